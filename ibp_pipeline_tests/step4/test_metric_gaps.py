"""Metric gaps: sign by direction, months to target on constructed linear series, the rolling trend against a
reference least-squares fit, the constitutional gap beside a trajectory, peer top-quartile gaps from hand-made
benchmark tables, and the real warehouse end to end."""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
import yaml

from ibp_pipeline.step2_triple_aim import standards as st
from ibp_pipeline.step2_triple_aim.standards import build_standards, build_targets, load_registry, targets_frame
from ibp_pipeline.step4_gaps.metric_gaps import (
    add_trend, build_metric_gaps, gap_points, least_squares_slope, metric_gaps_frame, months_to_target)

D = dt.date


def _months(start: D, n: int) -> list[D]:
    return [st._add_months(start, i) for i in range(n)]


def _source() -> dict:
    return {"document": "Test guidance", "year": 2025, "url": "https://example.org/guidance"}


def _std(standard_id: str, metric_id: str, target: float, direction: str, kind: str = "constitutional",
         **extra) -> dict:
    out = {"standard_id": standard_id, "metric_id": metric_id, "name": standard_id, "kind": kind, "target": target,
           "direction": direction, "effective_from": extra.pop("effective_from", D(2010, 4, 1)),
           "applies_to": ["provider", "icb"], "source": _source()}
    out.update(extra)
    return out


def _registry(tmp_path: Path, *items: dict) -> st.Registry:
    path = tmp_path / "standards.yaml"
    path.write_text(yaml.safe_dump({"version": "t", "standards": list(items)}, sort_keys=False), encoding="utf-8")
    return load_registry(path)


def _values(rows: list[tuple]) -> pl.DataFrame:
    frame = pl.DataFrame(rows, schema=["org_code", "org_level", "metric_id", "period_start", "value"], orient="row")
    return frame.with_columns(period_grain=pl.lit("month"), numerator=pl.lit(None, pl.Float64),
                              denominator=pl.lit(None, pl.Float64)).cast(st.VALUE_SCHEMA)  # type: ignore[arg-type]


def _gaps(tmp_path: Path, rows: list[tuple], *standards: dict, **kw) -> pl.DataFrame:
    values = _values(rows)
    reg = _registry(tmp_path, *standards)
    return metric_gaps_frame(values, targets_frame(values, reg), **kw)


# ---- gap sign -------------------------------------------------------------------------------------------------
def test_gap_sign_follows_the_direction(tmp_path):
    assert gap_points(70, 78, "at_least") == 8 and gap_points(80, 78, "at_least") == -2
    assert gap_points(95, 92, "at_most") == 3 and gap_points(90, 92, "at_most") == -2
    rows = [("T1", "provider", "ae_4hr_pct", D(2024, 1, 1), 70.0),
            ("T2", "provider", "ae_4hr_pct", D(2024, 1, 1), 80.0),
            ("T1", "provider", "ga_bed_occupancy_pct", D(2024, 1, 1), 95.0),
            ("T2", "provider", "ga_bed_occupancy_pct", D(2024, 1, 1), 90.0)]
    gaps = _gaps(tmp_path, rows, _std("ae", "ae_4hr_pct", 78, "at_least"),
                 _std("beds", "ga_bed_occupancy_pct", 92, "at_most", kind="planning_target"))
    got = {(r["org_code"], r["metric_id"]): (r["gap_points"], r["gap_pct"], r["meets_target"])
           for r in gaps.iter_rows(named=True)}
    assert got[("T1", "ae_4hr_pct")] == pytest.approx((8.0, 100 * 8 / 78, False))
    assert got[("T2", "ae_4hr_pct")] == pytest.approx((-2.0, -100 * 2 / 78, True))
    assert got[("T1", "ga_bed_occupancy_pct")] == pytest.approx((3.0, 100 * 3 / 92, False))
    assert got[("T2", "ga_bed_occupancy_pct")] == pytest.approx((-2.0, -100 * 2 / 92, True))
    assert gaps["gap_method"][0].startswith("gap_points = target_value - value (at_least)")


# ---- trend and months to target -----------------------------------------------------------------------------
def test_months_to_target_on_a_linear_series(tmp_path):
    """value = 60 + 0.5 a month for 12 months: at month 12 the value is 65.5, the target 70: 9 months to go.
    Occupancy 98 - 0.5 a month, target 92: at month 12, 92.5, 1 month to go. A series falling away: NULL."""
    months = _months(D(2024, 1, 1), 12)
    rows = [("UP", "provider", "ae_4hr_pct", m, 60 + 0.5 * i) for i, m in enumerate(months)]
    rows += [("AWAY", "provider", "ae_4hr_pct", m, 60 - 0.5 * i) for i, m in enumerate(months)]
    rows += [("BEDS", "provider", "ga_bed_occupancy_pct", m, 98 - 0.5 * i) for i, m in enumerate(months)]
    gaps = _gaps(tmp_path, rows, _std("ae", "ae_4hr_pct", 70, "at_least"),
                 _std("beds", "ga_bed_occupancy_pct", 92, "at_most", kind="planning_target"))
    last = {r["org_code"]: r for r in gaps.filter(pl.col("period_start") == D(2024, 12, 1)).iter_rows(named=True)}
    up = last["UP"]
    assert up["trend_points"] == 12 and not up["trend_provisional"]
    assert up["trend_slope_per_month"] == pytest.approx(0.5)
    assert up["months_to_target"] == pytest.approx(9.0)
    assert up["projected_period_reaching_target"] == D(2025, 9, 1)
    assert up["trend_status"] == "improving" and up["trend_window_start"] == D(2024, 1, 1)
    assert last["BEDS"]["trend_slope_per_month"] == pytest.approx(-0.5)
    assert last["BEDS"]["months_to_target"] == pytest.approx(1.0)
    away = last["AWAY"]
    assert away["months_to_target"] is None and away["trend_status"] == "not_at_current_trend"
    assert "least-squares slope" in away["trend_method"]
    # early in the series: fewer points, flagged; below 3 points no trend at all
    third = gaps.filter(pl.col("org_code") == "UP", pl.col("period_start") == D(2024, 3, 1)).row(0, named=True)
    assert third["trend_points"] == 3 and third["trend_provisional"]
    assert third["months_to_target"] == pytest.approx((70 - 61) / 0.5)
    second = gaps.filter(pl.col("org_code") == "UP", pl.col("period_start") == D(2024, 2, 1)).row(0, named=True)
    assert second["trend_status"] == "too_few_points" and second["months_to_target"] is None
    # the scalar rule
    assert months_to_target(4.5, 0.5, "at_least") == pytest.approx(9.0)
    assert months_to_target(0.5, -0.5, "at_most") == pytest.approx(1.0)
    assert months_to_target(-1.0, -3.0, "at_least") == 0.0
    assert months_to_target(2.0, 0.0, "at_least") is None


def test_rolling_trend_matches_least_squares_with_gaps_and_noise():
    rng = np.random.default_rng(7)
    months = [m for m in _months(D(2023, 1, 1), 30) if m not in (D(2023, 8, 1), D(2024, 2, 1))]
    values = list(50 + 0.3 * np.arange(len(months)) + rng.normal(0, 2, len(months)))
    frame = pl.DataFrame({"org_code": "T", "metric_id": "m", "period_start": months, "value": values})
    out = add_trend(frame).sort("period_start")
    x = np.array([(m.year - 2000) * 12 + m.month for m in months], dtype=float)
    for i, m in enumerate(months):
        window = (x > x[i] - 12) & (x <= x[i])  # the 12 months up to and including this one
        row = out.row(i, named=True)
        assert row["trend_points"] == window.sum()
        if window.sum() >= 3:
            expected = least_squares_slope(x[window], np.array(values)[window])
            assert row["trend_slope_per_month"] == pytest.approx(expected)
        else:
            assert row["trend_slope_per_month"] is None


def test_months_to_target_uses_the_trajectory_end(tmp_path):
    """Against a trajectory, months_to_target is to the END target, and on_track compares with the deadline."""
    months = _months(D(2024, 4, 1), 16)  # to July 2025
    rows = [("T1", "provider", "ae_4hr_pct", m, 60 + 1.0 * i) for i, m in enumerate(months)]
    gaps = _gaps(tmp_path, rows, _std("ae_const", "ae_4hr_pct", 95, "at_least"),
                 _std("ae_2026", "ae_4hr_pct", 90, "at_least", kind="planning_target",
                      effective_from=D(2025, 4, 1), deadline=D(2026, 3, 1), baseline_period=D(2025, 3, 1)))
    july = gaps.filter(pl.col("period_start") == D(2025, 7, 1)).row(0, named=True)
    # baseline 71 in March 2025 -> 90 in March 2026; July 2025 target 71 + 19 x 4/12; value 75
    assert july["standard_id"] == "ae_2026" and july["is_trajectory"]
    assert july["target_value"] == pytest.approx(71 + 19 * 4 / 12)
    assert july["gap_points"] == pytest.approx(71 + 19 * 4 / 12 - 75)
    assert july["end_target_value"] == pytest.approx(90.0)
    assert july["months_to_target"] == pytest.approx(15.0)  # (90 - 75) / 1 a month
    assert july["projected_period_reaching_target"] == D(2026, 10, 1)
    assert july["on_track_for_deadline"] is False
    # the constitutional gap sits beside the trajectory gap
    assert july["constitutional_standard_id"] == "ae_const"
    assert july["constitutional_gap_points"] == pytest.approx(20.0) and july["meets_constitutional"] is False
    march = gaps.filter(pl.col("period_start") == D(2025, 3, 1)).row(0, named=True)
    assert march["standard_id"] == "ae_const" and march["on_track_for_deadline"] is None


# ---- database: peer gaps from the benchmarks contract ---------------------------------------------------------
def _warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("create schema s1_current_state")
    con.execute("""create table s1_current_state.metric_values (org_code varchar, org_level varchar,
                   period_start date, period_grain varchar, metric_id varchar, value double, numerator double,
                   denominator double)""")
    rows = [(org, "provider", m, "month", "dm01_6wk_pct", v, None, None)
            for org, v in [("T1", 10.0), ("T2", 4.0)] for m in _months(D(2024, 10, 1), 6)]
    con.executemany("insert into s1_current_state.metric_values values (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return con


def test_peer_top_quartile_gap_from_benchmark_tables(tmp_path):
    con = _warehouse(tmp_path / "w.duckdb")
    reg = _registry(tmp_path, _std("dm01", "dm01_6wk_pct", 1, "at_most"))
    build_standards(con, reg)
    build_targets(con, reg)
    # without peer tables the columns are there and empty
    assert build_metric_gaps(con) == 12
    assert con.sql("select count(peer_top_quartile_gap_points), count(*) from s4_gaps.metric_gaps").fetchall() \
        == [(0, 12)]
    con.execute("create table s2_triple_aim.peer_groups as select * from (values ('T1', 3), ('T2', 5)) "
                "t(org_code, peer_group_id)")
    con.execute("""create table s2_triple_aim.benchmarks as select * from (values
        ('dm01_6wk_pct', date '2025-03-01', 'peer', 3, 8, 7.0, 5.0, 12.0),
        ('dm01_6wk_pct', date '2025-03-01', 'national', null, 120, 6.0, 3.0, 11.0))
        t(metric_id, period_start, scope, peer_group_id, n_orgs, median, top_quartile, bottom_quartile)""")
    build_metric_gaps(con)
    got = con.sql("""select org_code, peer_group_id, peer_n_orgs, peer_median, peer_top_quartile,
                     peer_top_quartile_gap_points, national_top_quartile, national_top_quartile_gap_points
                     from s4_gaps.metric_gaps where period_start = '2025-03-01' order by 1""").fetchall()
    # at_most: gap = value - top quartile; T2's peer group 5 has no benchmark row
    assert got == [("T1", "3", 8, 7.0, 5.0, 5.0, 3.0, 7.0), ("T2", "5", None, None, None, None, 3.0, 1.0)]
    assert con.sql("select count(peer_top_quartile) from s4_gaps.metric_gaps "
                   "where period_start <> '2025-03-01'").fetchall() == [(0,)]


def test_build_needs_the_targets(tmp_path):
    con = _warehouse(tmp_path / "w.duckdb")
    with pytest.raises(RuntimeError, match="s2_triple_aim.standards is missing"):
        build_metric_gaps(con)


# ---- real data --------------------------------------------------------------------------------------------------
def test_metric_gaps_on_the_step1_warehouse(real_warehouse, tmp_path):
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(real_warehouse, db)
    con = duckdb.connect(str(db))
    registry = load_registry()
    build_standards(con, registry)
    build_targets(con, registry)
    n = build_metric_gaps(con)
    assert n > 10_000
    one = con.sql("""select count(*) from (select org_code, metric_id, period_start from s4_gaps.metric_gaps
                     group by all having count(*) > 1)""").fetchall()[0][0]
    assert one == 0
    bad = con.sql("""select count(*) from s4_gaps.metric_gaps where meets_target <> (gap_points <= 0)
                     or (direction = 'at_least' and abs(gap_points - (target_value - value)) > 1e-9)
                     or (direction = 'at_most' and abs(gap_points - (value - target_value)) > 1e-9)
                     or months_to_target < 0 or value is null or target_value is null""").fetchall()[0][0]
    assert bad == 0
    statuses = dict(con.sql("select trend_status, count(*) from s4_gaps.metric_gaps group by 1").fetchall())
    assert set(statuses) <= {"meets_end_target", "improving", "not_at_current_trend", "too_few_points"}
    assert statuses.get("improving", 0) > 0 and statuses.get("meets_end_target", 0) > 0
    # England's A&E in 2025/26 is measured against the 78% trajectory, with the 95% gap beside it
    eng = con.sql("""select standard_id, constitutional_standard_id, constitutional_gap_points > gap_points
                     from s4_gaps.metric_gaps where org_code = 'ENGLAND' and metric_id = 'ae_4hr_pct'
                     and period_start = '2025-07-01'""").fetchall()
    assert eng == [("ae_4hr_2026", "ae_4hr_constitutional", True)]
