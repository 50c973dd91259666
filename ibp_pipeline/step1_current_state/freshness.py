"""How fresh each source is: the rules for the Dagster freshness checks and the dashboards' Data quality page.

Two rules. publication_status() judges a source by NHS England's publication calendar: the file for the month
after the latest one loaded is due on a known day (A&E on the second Thursday of the following month; RTT,
diagnostics and cancer waits about six weeks after month end, on the second Thursday of the second month after;
KH03 beds about eight weeks after the quarter ends), so a reader is told "the November 2026 A&E file was due on
10 December 2026" rather than an age in days. The schedules are data (PUBLICATION_RULES, keyed by source name).

freshness() is the older allowance rule, still used by the Dagster checks and for sources without a schedule: age
is counted from the END of the latest period a source covers to today, and a monthly source whose latest month
ended more than 45 days ago has missed (or is about to miss) a publication: a warning, not a failure, because the
figures are still right for the months they cover. Quarterly and annual allowances follow the same idea.
Historical series that are no longer published (SourceSpec.closed) and reference sources with no period have no
age limit under either rule."""
from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from datetime import date, timedelta

from .sources import BY_NAME, SourceSpec

ALLOWANCE_DAYS = {"month": 45, "quarter": 135, "year": 400}


def period_end(period_start: date, grain: str) -> date:
    """Last day of the period that starts on period_start (month, quarter or year)."""
    months = {"month": 1, "quarter": 3, "year": 12}.get(grain, 1)
    month_index = period_start.month - 1 + months - 1
    year, month = period_start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, calendar.monthrange(year, month)[1])


def allowance(spec: SourceSpec | None) -> int | None:
    """Days a source's latest period may have ended before it is stale; None when freshness does not apply."""
    if spec is None or spec.reference or spec.period_column is None or spec.closed:
        return None
    return spec.max_age_days or ALLOWANCE_DAYS.get(spec.period_grain)


def freshness(source: str, latest_period: date | None, today: date) -> tuple[str, int | None, int | None]:
    """(status, age in days since the latest period ended, allowance in days) for a source by name.

    status: 'Up to date', 'Stale', 'Historical' (a closed series) or 'No period' (reference or snapshot data)."""
    spec = BY_NAME.get(source)
    if spec is not None and spec.closed:
        return "Historical", None, None
    limit = allowance(spec) if spec is not None else ALLOWANCE_DAYS["month"]
    if latest_period is None or limit is None:
        return "No period", None, None
    age = (today - period_end(latest_period, spec.period_grain if spec else "month")).days
    return ("Stale" if age > limit else "Up to date"), age, limit


# ---- publication schedules -------------------------------------------------------------------------------------
# NHS England announces its statistics a year ahead, so "is this source up to date?" is better answered by "has the
# next file's publication day passed?" than by an age in days: the reader can check the date on the website.

THURSDAY = calendar.THURSDAY
ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth"}
GRAIN_MONTHS = {"month": 1, "quarter": 3, "year": 12}


@dataclass(frozen=True)
class PublicationRule:
    """When a period's file is published: on the nth Thursday of the month `months_after` months after the period's
    last month, or (nth_thursday 0) `days_after` days after the period ends. `subject` names the file in a sentence
    ('the November 2026 A&E file'); it is plain English, never a table name."""
    subject: str
    grain: str = "month"
    months_after: int = 1
    nth_thursday: int = 2
    days_after: int = 0
    approximate: bool = False  # the day is an estimate ('expected by'), not a published date ('due on')
    from_previous: bool = False  # days_after counts from the end of the period before (the allowance rule)


# A&E: NHS England's monthly performance statistics come out on the second Thursday of each month, with A&E for
# the month just ended. RTT, diagnostics and cancer waits come out the same day a month later: about six weeks
# after month end, i.e. the second Thursday of the second month after the data month. KH03 beds: about eight weeks
# after the quarter ends. Add a source here to give it a schedule; any other source keeps the allowance by grain.
_AE = PublicationRule("A&E")
_RTT = PublicationRule("referral to treatment (RTT)", months_after=2)
_DM01 = PublicationRule("diagnostic waiting times (DM01)", months_after=2)
_CANCER = PublicationRule("cancer waiting times", months_after=2)
_KH03 = PublicationRule("KH03 bed availability", grain="quarter", nth_thursday=0, days_after=56, approximate=True)
PUBLICATION_RULES: dict[str, PublicationRule] = {
    "ae_monthly_official": _AE,
    "rtt_incomplete": _RTT, "rtt_full_extract": _RTT,
    "dm01_diagnostics": _DM01, "dm01_web_file": _DM01,
    "cancer_waiting_times": _CANCER, "cancer_combined_workbook": _CANCER, "cancer_combined_workbook_system": _CANCER,
    "cancer_cwt_crs_extract": _CANCER,
    "beds_kh03": _KH03, "kh03_web_file": _KH03,
}


@dataclass(frozen=True)
class Publication:
    """Where a source stands against its publication schedule. status is 'Up to date', 'Stale' (behind: the
    next file's due date has passed), 'Historical' or 'No period'; due_period is the first period not loaded and
    due_date the day its file was (or is) due; overdue counts the files whose due date has passed; sentence says
    it all in one line of plain English for the dashboards."""
    status: str
    due_period: date | None
    due_date: date | None
    overdue: int
    sentence: str


def add_months(day: date, months: int) -> date:
    """The first of the month `months` after day's month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def nth_weekday(year: int, month: int, n: int, weekday: int = THURSDAY) -> date:
    """The nth given weekday (Monday 0 ... Thursday 3) of a month: publication days are set this way."""
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def due_date(rule: PublicationRule, period_start: date) -> date:
    """The day the file for the period starting on period_start is published under rule."""
    step = GRAIN_MONTHS.get(rule.grain, 1)
    end = period_end(add_months(period_start, -step) if rule.from_previous else period_start, rule.grain)
    if not rule.nth_thursday:
        return end + timedelta(days=rule.days_after)
    month = add_months(end, rule.months_after)
    return nth_weekday(month.year, month.month, rule.nth_thursday)


def period_label(period_start: date, grain: str) -> str:
    """'November 2026', 'January to March 2025' or 'April 2024 to March 2025': a period as a reader says it."""
    if grain not in GRAIN_MONTHS or grain == "month":
        return f"{period_start:%B %Y}"
    end = period_end(period_start, grain)
    first = f"{period_start:%B}" if period_start.year == end.year else f"{period_start:%B %Y}"
    return f"{first} to {end:%B %Y}"


def long_date(day: date) -> str:
    """'10 December 2026' (no leading zero), as NHS England writes dates."""
    return f"{day.day} {day:%B %Y}"


def schedule(rule: PublicationRule) -> str:
    """The rule in words, for help text: 'the second Thursday of the month after the month it covers'."""
    if not rule.nth_thursday:
        return f"about {rule.days_after // 7} weeks after the {rule.grain} it covers ends"
    after = {1: "the month", 2: "the second month"}.get(rule.months_after, f"the month {rule.months_after} months")
    nth = ORDINALS.get(rule.nth_thursday, str(rule.nth_thursday))
    return f"the {nth} Thursday of {after} after the month it covers"


def fallback_rule(spec: SourceSpec | None) -> PublicationRule | None:
    """The allowance by grain as a rule (a newer file is expected within the allowance after the latest period
    ends), so a source without a schedule gets the same verdict as freshness(); None when it has no period."""
    limit = allowance(spec) if spec is not None else ALLOWANCE_DAYS["month"]
    if limit is None:
        return None
    return PublicationRule("", grain=spec.period_grain if spec else "month", nth_thursday=0, days_after=limit,
                           approximate=True, from_previous=True)


def overdue_files(rule: PublicationRule, first_missing: date, today: date) -> int:
    """How many periods from first_missing on had their file due before today (0 when none is late)."""
    step, count, period = GRAIN_MONTHS.get(rule.grain, 1), 0, first_missing
    while due_date(rule, period) < today:
        count, period = count + 1, add_months(period, step)
    return count


def source_grain(source: str) -> str:
    """A source's grain from the registry when it is there, else from its publication rule, else 'month': a
    source named in PUBLICATION_RULES may be added to the registry after this module knows its schedule."""
    spec = BY_NAME.get(source)
    if spec is not None:
        return spec.period_grain
    rule = PUBLICATION_RULES.get(source)
    return rule.grain if rule is not None else "month"


def publication_status(source: str, latest_period: date | None, today: date) -> Publication:
    """Judge a source by its next publication day: if the file for the period after the latest one loaded was due
    before today, the source is behind ('Stale'); otherwise it is up to date until that day. Sources with no
    schedule in PUBLICATION_RULES fall back to the allowance by grain (the same verdict as freshness())."""
    spec = BY_NAME.get(source)
    if spec is not None and spec.closed:
        return Publication("Historical", None, None, 0, "No longer published: kept for its history.")
    if spec is not None and (spec.reference or spec.period_column is None):
        return Publication("No period", None, None, 0, "Reference data with no monthly or quarterly period.")
    if latest_period is None:
        return Publication("No period", None, None, 0, "No period loaded yet.")
    scheduled = PUBLICATION_RULES.get(source)
    rule = scheduled or fallback_rule(spec)
    if rule is None:
        return Publication("No period", None, None, 0, "No publication schedule applies.")
    if scheduled is not None and source_grain(source) in GRAIN_MONTHS:
        rule = replace(rule, grain=source_grain(source))  # the registry knows the grain best
    step = GRAIN_MONTHS.get(rule.grain, 1)
    due_period = add_months(latest_period.replace(day=1), step)
    due = due_date(rule, due_period)
    file = " ".join(w for w in ("the", period_label(due_period, rule.grain), rule.subject, "file") if w)
    on = "by" if rule.approximate else "on"
    if due < today:
        late = overdue_files(rule, due_period, today)
        more = f" ({late} files are now overdue)" if late > 1 else ""
        was = "was expected" if rule.approximate else "was due"
        return Publication("Stale", due_period, due, late, f"Behind: {file} {was} {on} {long_date(due)}{more}.")
    when = "today" if due == today else f"{on} {long_date(due)}"
    is_ = "is expected" if rule.approximate else "is due"
    return Publication("Up to date", due_period, due, 0, f"Up to date: {file} {is_} {when}.")
