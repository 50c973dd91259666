"""Every line a plan holds, in the order of its sheets: activity and performance, workforce (FTE by staff group and
contract), finance (income, pay by staff group, non-pay, efficiency, surplus or deficit) and capital schemes.

A line is an input (the planner's number, one per month) or derived (worked out from other lines when the plan is
loaded: totals and the surplus; the workbook shows them as formulas, and what a planner types there is ignored).
`actual` names the published measure (s1_current_state.metric_values) a line is tracked against, where there is one.
"""
from __future__ import annotations

from dataclasses import dataclass

from .assumptions import load

PARTS = ("activity", "workforce", "finance")
SHEETS = {"activity": "Activity", "workforce": "Workforce", "finance": "Finance"}
CONTRACTS = ("substantive", "bank", "agency")


@dataclass(frozen=True)
class Line:
    part: str
    line_id: str
    label: str
    unit: str
    derived: bool = False
    percent: bool = False
    direction: str | None = None  # performance lines: 'at_least' (higher is better) or 'at_most'
    standard: bool = False  # drafted from, and checked against, the standards' trajectory
    actual: tuple[str, ...] = ()  # published measures whose sum is the actual
    optional: bool = False  # empty cells allowed (not published for every organisation)
    staff_group: str | None = None
    contract: str | None = None

    @property
    def stock(self) -> bool:
        """A level at a point in time (a list, FTE, beds, a percentage): a year is its average, not its sum."""
        return self.percent or self.unit in ("FTE", "beds") or self.line_id in ("rtt_waiting_list",
                                                                                 "rtt_52wk_waiters")

    @property
    def favourable(self) -> str | None:
        """Which way off plan is good news: 'above', 'below', or None when neither is (activity volumes)."""
        if self.direction:
            return "above" if self.direction == "at_least" else "below"
        if self.part == "finance":
            return "above" if self.line_id.startswith("income") or self.line_id in ("cip", "surplus") else "below"
        if self.line_id in ("rtt_waiting_list", "rtt_52wk_waiters", "ae_12hr_waits", "ga_occupancy_pct"):
            return "below"
        return None

    @property
    def decimals(self) -> int:
        """Decimals a value of this line is kept to (in the workbook and the store)."""
        return 2 if self.percent or self.unit == "FTE" else 0


ACTIVITY: tuple[Line, ...] = (
    Line("activity", "rtt_clock_starts", "RTT clock starts (new referral to treatment pathways)", "pathways",
         actual=("rtt_clock_starts",)),
    Line("activity", "rtt_clock_stops_admitted", "RTT clock stops: admitted (treated in hospital)", "pathways",
         actual=("rtt_clock_stops_admitted",)),
    Line("activity", "rtt_clock_stops_non_admitted", "RTT clock stops: non-admitted", "pathways",
         actual=("rtt_clock_stops_non_admitted",)),
    Line("activity", "rtt_validation_removals", "RTT pathways removed by validation (no clock stop)", "pathways"),
    Line("activity", "rtt_waiting_list", "RTT waiting list at the end of the month", "pathways",
         actual=("rtt_waiting_list",)),
    Line("activity", "rtt_18wk_pct", "RTT patients waiting under 18 weeks", "%", percent=True,
         standard=True, direction="at_least", actual=("rtt_18wk_pct",)),
    Line("activity", "rtt_52wk_waiters", "RTT patients waiting over 52 weeks", "pathways",
         actual=("rtt_52wk_waiters",)),
    Line("activity", "ae_attendances", "A&E attendances", "attendances", actual=("ae_attendances",)),
    Line("activity", "ae_emergency_admissions", "Emergency admissions", "admissions",
         actual=("ae_emergency_admissions",)),
    Line("activity", "ae_4hr_pct", "A&E patients seen within 4 hours", "%", percent=True, standard=True,
         direction="at_least", actual=("ae_4hr_pct",)),
    Line("activity", "ae_12hr_waits", "12-hour waits from decision to admit", "patients",
         actual=("ae_12hr_dta_waits",)),
    Line("activity", "dm01_tests", "Diagnostic tests done (DM01: waiting list, planned and unscheduled)", "tests"),
    Line("activity", "dm01_6wk_pct", "Diagnostic patients waiting 6 weeks or more", "%", percent=True,
         standard=True, direction="at_most", actual=("dm01_6wk_pct",)),
    Line("activity", "cancer_fds_pct", "Cancer: diagnosis or ruled out within 28 days", "%", percent=True,
         standard=True, direction="at_least", actual=("cancer_fds_pct",)),
    Line("activity", "cancer_62d_pct", "Cancer: treatment within 62 days", "%", percent=True,
         standard=True, direction="at_least", actual=("cancer_62d_pct",)),
    Line("activity", "ga_beds", "General and acute beds available", "beds", actual=("ga_beds_available",)),
    Line("activity", "ga_occupancy_pct", "General and acute bed occupancy", "%", percent=True,
         direction="at_most", actual=("ga_bed_occupancy_pct",)),
    Line("activity", "vw_capacity", "Virtual ward capacity", "beds", optional=True, actual=("vw_capacity",)),
)


def workforce_lines() -> tuple[Line, ...]:
    out = []
    for g in load().staff_groups:
        for c in CONTRACTS:
            out.append(Line("workforce", f"fte_{g.id}_{c}", f"{g.label}: {c}", "FTE", staff_group=g.id,
                            contract=c, actual=(g.metric_id,) if c == "substantive" else ()))
    out.append(Line("workforce", "fte_total", "All staff", "FTE", derived=True))
    return tuple(out)


INCOME: tuple[Line, ...] = (
    Line("finance", "income_ae", "Income: A&E attendances", "GBP"),
    Line("finance", "income_emergency", "Income: emergency admissions", "GBP"),
    Line("finance", "income_elective", "Income: elective admissions (admitted RTT clock stops)", "GBP"),
    Line("finance", "income_diagnostics", "Income: diagnostic tests", "GBP"),
    Line("finance", "income_other", "Income: everything else (block, community, education, other)", "GBP"),
    Line("finance", "income_total", "Income: total", "GBP", derived=True),
)
ACTIVITY_INCOME = ("income_ae", "income_emergency", "income_elective", "income_diagnostics")


def finance_lines() -> tuple[Line, ...]:
    pay = tuple(Line("finance", f"pay_{g.id}", f"Pay: {g.label}", "GBP", staff_group=g.id)
                for g in load().staff_groups)
    return INCOME + pay + (
        Line("finance", "pay_total", "Pay: total", "GBP", derived=True),
        Line("finance", "non_pay", "Non-pay costs", "GBP"),
        Line("finance", "cip", "Efficiency savings delivered (cost improvement programme)", "GBP"),
        Line("finance", "surplus", "Surplus (+) or deficit (-)", "GBP", derived=True),
    )


def all_lines() -> tuple[Line, ...]:
    return ACTIVITY + workforce_lines() + finance_lines()


def by_id() -> dict[str, Line]:
    return {line.line_id: line for line in all_lines()}


def part_lines(part: str) -> tuple[Line, ...]:
    return tuple(line for line in all_lines() if line.part == part)
