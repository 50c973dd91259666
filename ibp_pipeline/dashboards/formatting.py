"""One way to write a number with its unit, shared by the dashboard pages, the Overview's "what changed"
sentences, the forecast explanations and the board pack, so a figure reads the same wherever a leader meets it."""
from __future__ import annotations

from datetime import date

PERCENT_UNITS = ("percent", "%", "pct", "percentage")


def fmt_value(value: float | None, unit: str | None) -> str:
    """82.31, 'percent' -> '82.3%'; 20292, 'count' -> '20,292'; 1.234 -> '1.23'; money in pounds with thousands
    separators; None -> '-'."""
    if value is None:
        return "-"
    unit = (unit or "").lower()
    if unit in PERCENT_UNITS:
        return f"{value:.1f}%"
    if unit.startswith("gbp") or unit in ("£", "pounds"):
        return f"£{value:,.0f}" + (" a year" if unit.endswith("per year") else "")
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def fmt_cell(value: object, unit: str | None = None) -> str:
    """Any table cell as text: numbers through fmt_value, months as 'May 2025', yes/no, codes with spaces."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return fmt_value(value, unit)
    if isinstance(value, date):
        return f"{value:%b %Y}"
    return str(value).replace("_", " ")
