"""A planning period: whole NHS financial years (April to March), e.g. 2026/27-2028/29, and its months."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

DEFAULT_PERIOD = "2026/27-2028/29"  # NHS England's Medium Term Planning Framework
_FY = re.compile(r"^\s*(\d{4})/(\d{2})\s*$")


class PeriodError(ValueError):
    """A planning period that is not 'YYYY/YY-YYYY/YY' with consecutive years."""


def _start_year(text: str) -> int:
    m = _FY.match(text)
    if not m or (int(m.group(1)) + 1) % 100 != int(m.group(2)):
        raise PeriodError(f"{text.strip()!r} is not a financial year such as 2026/27")
    return int(m.group(1))


def fy_label(start_year: int) -> str:
    return f"{start_year}/{(start_year + 1) % 100:02d}"


def financial_year(month: dt.date) -> str:
    """The financial year a month falls in: April 2026 to March 2027 is 2026/27."""
    return fy_label(month.year if month.month >= 4 else month.year - 1)


@dataclass(frozen=True)
class Period:
    first_year: int  # 2026 for 2026/27
    last_year: int

    @classmethod
    def parse(cls, text: str = DEFAULT_PERIOD) -> "Period":
        first, sep, last = text.partition("-")
        if not sep:
            first = last = text
        a, b = _start_year(first), _start_year(last)
        if b < a or b - a > 9:
            raise PeriodError(f"{text!r}: the last year must follow the first, at most ten years on")
        return cls(a, b)

    @property
    def label(self) -> str:
        return fy_label(self.first_year) + ("" if self.last_year == self.first_year
                                            else "-" + fy_label(self.last_year))

    @property
    def years(self) -> list[str]:
        return [fy_label(y) for y in range(self.first_year, self.last_year + 1)]

    @property
    def months(self) -> list[dt.date]:
        return [dt.date(y + (m < 4), m, 1) for y in range(self.first_year, self.last_year + 1)
                for m in (4, 5, 6, 7, 8, 9, 10, 11, 12, 1, 2, 3)]

    def __contains__(self, month: dt.date) -> bool:
        return dt.date(self.first_year, 4, 1) <= month <= dt.date(self.last_year + 1, 3, 1)
