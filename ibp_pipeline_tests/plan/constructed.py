"""A plan built by hand with round numbers, so every check's answer can be worked out on paper:

- the RTT list stays at 10,000: starts 10,000 = admitted stops 2,500 + non-admitted stops 5,000 + removals 2,500;
- every activity line grows exactly 2% a year (flows too, so the list still balances), FTE stay at 100 per staff
  group (800 in all), so weighted activity per FTE grows exactly 2% a year;
- unit costs GBP 100 each, so weighted activity per month = (A&E 10,000 + emergency 2,500 + admitted stops 2,500 +
  tests 5,000) x 100 = GBP 2,000,000 in 2026/27; the year before the plan is that / 1.02 (multiples of 2,500
  grow by 2% and 4.04% to whole numbers, so the values are what the workbook keeps);
- annual cost per FTE GBP 12,000, so each staff group's pay is GBP 100,000 a month;
- activity income = activity x unit cost; 100 beds at 90% occupancy (100 the year before, with 100 nurses: one per
  bed); performance 70%.
"""
from __future__ import annotations

import numpy as np

from ibp_pipeline.plan.assumptions import load
from ibp_pipeline.plan.document import AssumptionRow, CapitalScheme, PlanDocument
from ibp_pipeline.plan.lines import all_lines
from ibp_pipeline.plan.period import Period

PERIOD = Period.parse("2026/27-2028/29")
N = 36
GROWTH = np.repeat(1.02 ** np.arange(3), 12)
ACTIVITY = {"rtt_clock_starts": 10000, "rtt_clock_stops_admitted": 2500, "rtt_clock_stops_non_admitted": 5000,
            "rtt_validation_removals": 2500, "ae_attendances": 10000, "ae_emergency_admissions": 2500,
            "dm01_tests": 5000, "ae_12hr_waits": 2500, "rtt_52wk_waiters": 2500}
PRICED = ("ae_attendances", "ae_emergency_admissions", "rtt_clock_stops_admitted", "dm01_tests")
INCOME = {"ae_attendances": "income_ae", "ae_emergency_admissions": "income_emergency",
          "rtt_clock_stops_admitted": "income_elective", "dm01_tests": "income_diagnostics"}


def constructed() -> PlanDocument:
    groups = load().staff_groups
    values: dict[str, np.ndarray] = {}
    for line in all_lines():
        if not line.derived:
            values[line.line_id] = np.zeros(N)
    for line_id, v in ACTIVITY.items():
        values[line_id] = np.round(v * GROWTH)
    values["rtt_waiting_list"] = np.full(N, 10000.0)
    for pct in ("rtt_18wk_pct", "ae_4hr_pct", "dm01_6wk_pct", "cancer_fds_pct", "cancer_62d_pct"):
        values[pct] = np.full(N, 70.0)
    values["ga_beds"], values["ga_occupancy_pct"], values["vw_capacity"] = np.full(N, 100.0), np.full(N, 90.0), \
        np.full(N, np.nan)
    for g in groups:
        values[f"fte_{g.id}_substantive"] = np.full(N, 100.0)
        values[f"pay_{g.id}"] = np.full(N, 100_000.0)
    for line_id, income in INCOME.items():
        values[income] = values[line_id] * 100
    values["income_other"] = np.full(N, 500_000.0)
    values["non_pay"] = np.full(N, 400_000.0)
    values["cip"] = np.full(N, 20_000.0)
    assumptions = [AssumptionRow(a.id, a.label, a.value, a.unit, a.source) for a in load().assumptions]
    assumptions += [AssumptionRow(f"unit_cost_{line}", line, 100.0, "GBP", "constructed") for line in PRICED]
    assumptions += [AssumptionRow(f"annual_cost_{g.id}", g.label, 12_000.0, "GBP", "constructed") for g in groups]
    assumptions += [AssumptionRow(f"baseline_fte_{g.id}", g.label, 100.0, "FTE", "constructed") for g in groups]
    assumptions.append(AssumptionRow("baseline_weighted_activity_gbp", "base", 12 * 2_000_000 / 1.02, "GBP", "c"))
    assumptions.append(AssumptionRow("baseline_ga_beds", "beds", 100.0, "beds", "constructed"))
    doc = PlanDocument("RXL", "Constructed trust", PERIOD, values, {k: "constructed" for k in values},
                       assumptions, [CapitalScheme("New ward", "New capacity", 20.0, PERIOD.months[18],
                                                   {"2026/27": 0.0, "2027/28": 2_000_000.0, "2028/29": 500_000.0})])
    return doc.derive()
