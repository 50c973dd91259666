"""How fresh each source is: one rule for the Dagster freshness checks and the dashboards' Data quality page.

Age is counted from the END of the latest period a source covers to today. NHS England publishes monthly
statistics about six weeks after the month ends, so a monthly source whose latest month ended more than 45 days
ago has missed (or is about to miss) a publication: a warning, not a failure, because the figures are still
right for the months they cover. Quarterly and annual allowances follow the same idea. Historical series that
are no longer published (SourceSpec.closed) and reference sources with no period have no age limit."""
from __future__ import annotations

import calendar
from datetime import date

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
