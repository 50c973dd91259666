"""Reviews of plan exceptions: a CSV checked row by row, stored as revisions that a refresh never drops, served,
and shown as the latest revision of each (open ones until closed)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from ibp_pipeline import cli
from ibp_pipeline.dashboards import plan as plan_page
from ibp_pipeline.dashboards.serving import Serving
from ibp_pipeline.plan.reviews import COLUMNS, read_reviews

GOOD = ["RXL", "pay_nurses_health_visitors", "2026-04", "Agency nurses covered winter wards", "Sickness at 7%",
        "Bank rota from May", "Director of Nursing", "2026-07-31", "open"]


def write(path: Path, rows: list[list[str]]) -> Path:
    import csv

    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        w.writerows(rows)
    return path


def test_every_bad_cell_of_a_review_file_is_one_line_and_nothing_is_kept(tmp_path):
    bad = [GOOD, GOOD[:1] + ["fte_wizards"] + GOOD[2:], GOOD[:2] + ["April"] + GOOD[3:],
           GOOD[:7] + ["soon", "pending"]]
    reviews, problems = read_reviews(write(tmp_path / "reviews.csv", bad))
    assert reviews == []
    assert problems == [
        "reviews.csv: row 3, column 'line': 'fte_wizards' is not a plan line (a code from column A of the plan "
        "workbook)",
        "reviews.csv: row 4, column 'month': 'April' is not a month written YYYY-MM",
        "reviews.csv: row 5, column 'due_date': 'soon' is not a date written YYYY-MM-DD",
        "reviews.csv: row 5, column 'status': 'pending' must be open or closed"]
    reviews, problems = read_reviews(write(tmp_path / "good.csv", [GOOD]))
    assert problems == [] and reviews[0].month == dt.date(2026, 4, 1) and reviews[0].status == "open"


def test_reviews_are_stored_as_revisions_served_and_kept_by_a_refresh(copied_run: Path, tmp_path, monkeypatch,
                                                                      capsys):
    monkeypatch.setenv("IBP_DATA_DIR", str(copied_run))
    assert cli.main(["plan", "review", str(write(tmp_path / "r1.csv", [GOOD]))]) == 0
    closed = GOOD[:3] + ["Agency use back to plan", "", "Rota held", "Director of Nursing", "2026-07-31", "closed"]
    assert cli.main(["plan", "review", str(write(tmp_path / "r2.csv", [closed]))]) == 0
    out = capsys.readouterr().out
    assert "1 review stored (1 of them new revisions of earlier reviews)" in out
    assert cli.main(["plan", "review", str(write(tmp_path / "r3.csv", [GOOD[:2] + ["2026-4x"] + GOOD[3:]]))]) == 1
    assert "row 2, column 'month'" in capsys.readouterr().err
    served = Serving(copied_run / "serving.duckdb")
    latest = plan_page.reviews(served, "RXL")
    assert latest.select("line_id", "revision", "status").rows() == [("pay_nurses_health_visitors", 2, "closed")]
    sentence = plan_page.review_sentence(latest.row(0, named=True), "Pay: Nurses and health visitors")
    assert sentence.startswith("**Pay: Nurses and health visitors, April 2026** (closed; owner Director of Nursing")
    # every revision lives in the plan store, which no refresh rebuilds; the warehouse's table is a copy of it
    store = duckdb.connect(str(copied_run / "plans.duckdb"), read_only=True)
    kept = store.execute("select revision, status, entered_by from plan.reviews order by revision").fetchall()
    store.close()
    warehouse = duckdb.connect(str(copied_run / "warehouse.duckdb"), read_only=True)
    copied = warehouse.execute("select revision, status, entered_by from plan.reviews order by revision").fetchall()
    warehouse.close()
    assert [k[:2] for k in kept] == [(1, "open"), (2, "closed")] and copied == kept
