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


# ---- words around numbers: one rule each, so the same figure never reads two ways ----------------------------

PER_WORDS = {"per week": "a week", "per year": "a year", "per month": "a month", "per day": "a day"}
LONG_HORIZON_MONTHS = 120  # beyond ten years a trend's arithmetic is no plan: say so rather than '438 months'


def plural(n: float, word: str, many: str | None = None) -> str:
    """'1 month', '2 months', '1,234 patients': the number with thousands separators and the word agreeing."""
    whole = float(n).is_integer()
    number = f"{n:,.0f}" if whole else f"{n:,.1f}"
    return f"{number} {word if whole and abs(n) == 1 else (many or word + 's')}"


def unit_words(unit: str | None) -> str:
    """A catalogue unit in plain words: 'patients per week' -> 'patients a week', 'gbp per year' -> '£ a year'."""
    text = (unit or "").strip()
    if text.lower().startswith("gbp"):
        text = ("£ " + text[3:].strip()).strip()
    for per, words in PER_WORDS.items():
        text = text.replace(per, words)
    return text.replace("_", " ")


def fmt_quantity(value: float | None, unit: str | None) -> str:
    """A count with its unit in words: 259289.0, 'patients per week' -> '259,289 patients a week'; money and
    percentages through fmt_value."""
    if value is None:
        return "-"
    u = (unit or "").lower()
    if u in PERCENT_UNITS or u.startswith("gbp") or u in ("£", "pounds"):
        return fmt_value(value, unit)
    return f"{fmt_value(value, None)} {unit_words(unit)}".strip()


def fmt_money_short(value: float | None) -> str:
    """Pounds for a headline: 1543333 -> '£1.5m', 250000 -> '£250k', 900 -> '£900', -2.4e9 -> '-£2.4bn'."""
    if value is None:
        return "-"
    sign, v = ("-" if value < 0 else ""), abs(value)
    for size, suffix in ((1e9, "bn"), (1e6, "m")):
        if round(v / size, 1) >= 1:
            return f"{sign}£{v / size:,.1f}".removesuffix(".0") + suffix
    if round(v) >= 1000:
        return f"{sign}£{v / 1e3:,.0f}k"
    return f"{sign}£{v:,.0f}"


def fmt_months(months: float | None) -> str:
    """A time to reach something: 'about 1 month', 'about 7 months', 'about 3 years' (from two years), and
    'more than 10 years' beyond LONG_HORIZON_MONTHS (a straight-line trend says nothing that far out)."""
    if months is None:
        return "-"
    if months > LONG_HORIZON_MONTHS:
        return "more than 10 years"
    whole = max(1, round(months))
    if whole >= 24:
        return f"about {plural(round(whole / 12), 'year')}"
    return f"about {plural(whole, 'month')}"


def chance_percent(p: float) -> int:
    """A probability as a whole percentage, rounding halves up (0.175 -> 18): the one rule for every chance shown
    in text, tables, bars and heatmaps."""
    return int(p * 100 + 0.5 + 1e-9)


def chance_percents(values) -> list[int | None]:
    """chance_percent of each probability (None stays None): for chart values, so a bar, a hover and a sentence
    agree."""
    return [None if p is None else chance_percent(p) for p in values]


def fmt_chance(p: float | None) -> str:
    """0.1749 -> '17%'; under half a percent 'almost none', over 99.5% 'almost certain'; None -> '-'."""
    if p is None:
        return "-"
    if p < 0.005:
        return "almost none"
    if p > 0.995:
        return "almost certain"
    return f"{chance_percent(p)}%"


def meets(value: float | None, target: float | None, direction: str, unit: str | None = None) -> bool | None:
    """Whether a value meets a target ('at_least' a floor, 'at_most' a ceiling), judged on the figures as shown:
    92.04% against a 92% ceiling reads '92.0%', so it meets it; equal to the target always meets it."""
    if value is None or target is None:
        return None
    digits = 1 if (unit or "").lower() in PERCENT_UNITS or abs(value) < 100 else 0
    v, t = round(value, digits), round(target, digits)
    return v <= t if direction == "at_most" else v >= t
