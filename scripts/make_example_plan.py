"""Maintainers: write the bundled example plan (data/examples/plan_RXL_2026-27-2028-29_example.xlsx) and the
example finance ledger (data/sources/finance_ledger_example/ledger_RXL_example.csv).

It is `ibp plan draft --org RXL` on the served data of a bundled run, with what a planner would add: bank and
agency staff at stated shares, one capital scheme that opens 12 beds, those beds in the bed line, and the README
marked as an example (every page and table that shows it says so). The ledger is the example plan's finance lines
for April to September 2026 moved by seeded noise of about 2%, with nurses' pay 6% over plan and other income 4%
under: made-up figures, "EXAMPLE: not real figures" on every row. Run after `ibp run`:

    .venv/bin/python scripts/make_example_plan.py [--serving data/serving.duckdb]
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
from pathlib import Path

import duckdb
import numpy as np

from ibp_pipeline.config import PROJECT_ROOT, get_paths
from ibp_pipeline.plan.document import CapitalScheme
from ibp_pipeline.plan.lines import finance_lines
from ibp_pipeline.plan.period import Period
from ibp_pipeline.plan.prefill import draft
from ibp_pipeline.plan.store import EXAMPLE
from ibp_pipeline.plan.workbook import write_workbook

OPENS = dt.date(2027, 10, 1)
BEDS = 12


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serving", default=str(get_paths().serving))
    args = parser.parse_args()
    con = duckdb.connect(args.serving, read_only=True)
    doc = draft(con, "RXL", Period.parse("2026/27-2028/29"), overrides={"bank_share_pct": 4.0,
                                                                        "agency_share_pct": 1.0})
    months = doc.period.months
    doc.values["ga_beds"] = doc.values["ga_beds"] + np.array([BEDS if m >= OPENS else 0 for m in months])
    doc.sources["ga_beds"] += f"; plus {BEDS} beds from {OPENS:%b %Y} (the example capital scheme)"
    doc.capital.append(CapitalScheme("Same-day emergency care and short-stay ward (example)", "New capacity",
                                     BEDS, OPENS, {"2026/27": 1_500_000.0, "2027/28": 2_500_000.0,
                                                   "2028/29": 0.0}))
    doc.notes["example"] = "yes"
    doc.org_name += " (EXAMPLE: not the trust's plan)"
    write_workbook(doc.derive(), Path(EXAMPLE))
    print(f"wrote {EXAMPLE}")
    write_ledger(doc)


LEDGER = PROJECT_ROOT / "data" / "sources" / "finance_ledger_example" / "ledger_RXL_example.csv"
LEDGER_MONTHS = 6  # April to September 2026
SHIFTS = {"pay_nurses_health_visitors": 1.06, "income_other": 0.96}


def write_ledger(doc) -> None:
    """The example plan's finance input lines, month by month, as a ledger would report them (made up)."""
    rng = np.random.default_rng(20260401)
    lines = [line for line in finance_lines() if not line.derived]
    LEDGER.parent.mkdir(parents=True, exist_ok=True)
    with LEDGER.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["org_code", "month", "line", "amount_gbp", "note"])
        for i, month in enumerate(doc.period.months[:LEDGER_MONTHS]):
            for line in lines:
                planned = float(doc.values[line.line_id][i])
                amount = planned * SHIFTS.get(line.line_id, 1.0) * (1 + rng.normal(0, 0.02))
                out.writerow(["RXL", f"{month:%Y-%m}", line.line_id, f"{amount:.0f}", "EXAMPLE: not real figures"])
    print(f"wrote {LEDGER}")


if __name__ == "__main__":
    main()
