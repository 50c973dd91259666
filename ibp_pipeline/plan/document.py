"""A plan in memory: one organisation, one period, a value per line and month, where each line's numbers came from,
the assumptions it was built on, its capital schemes and the planner's notes. What `ibp plan draft` writes into a
workbook and what `ibp plan load` reads back."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from .assumptions import load
from .lines import by_id
from .period import Period


@dataclass
class AssumptionRow:
    assumption_id: str
    label: str
    value: float
    unit: str
    source: str


@dataclass
class CapitalScheme:
    name: str
    category: str
    beds_added: float
    start: dt.date | None
    by_year: dict[str, float]  # financial year label -> GBP


@dataclass
class PlanDocument:
    org_code: str
    org_name: str
    period: Period
    values: dict[str, np.ndarray]  # line_id -> one value per month (NaN: empty, optional lines only)
    sources: dict[str, str] = field(default_factory=dict)  # line_id -> where its numbers came from
    assumptions: list[AssumptionRow] = field(default_factory=list)
    capital: list[CapitalScheme] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)  # e.g. productivity_explanation
    data_as_of: str = ""

    @property
    def example(self) -> bool:
        """A bundled example, not an organisation's plan (README says so); labelled wherever it is shown."""
        return self.notes.get("example", "").strip().lower() in ("yes", "y", "true")

    def assumption(self, assumption_id: str, default: float | None = None) -> float:
        """The plan's own value of an assumption; else `default`, else the shipped default (a workbook that
        predates the assumption)."""
        found = [a.value for a in self.assumptions if a.assumption_id == assumption_id]
        if found:
            return found[0]
        return default if default is not None else load().value(assumption_id)

    def derive(self) -> "PlanDocument":
        """Fill the derived lines (totals, surplus) from the inputs."""
        lines = by_id()
        n = len(self.period.months)

        def total(ids) -> np.ndarray:
            return np.nansum([self.values.get(i, np.zeros(n)) for i in ids], axis=0) if ids else np.zeros(n)

        self.values["fte_total"] = total([i for i, line in lines.items() if line.part == "workforce"
                                          and not line.derived])
        self.values["income_total"] = total([i for i in lines if i.startswith("income_") and i != "income_total"])
        self.values["pay_total"] = total([i for i in lines if i.startswith("pay_") and i != "pay_total"])
        self.values["surplus"] = (self.values["income_total"] - self.values["pay_total"]
                                  - self.values.get("non_pay", np.zeros(n)) + self.values.get("cip", np.zeros(n)))
        for i in ("fte_total", "income_total", "pay_total", "surplus"):
            self.sources[i] = DERIVED_SOURCES[i]
        return self


DERIVED_SOURCES = {
    "fte_total": "sum of every staff group's substantive, bank and agency FTE",
    "income_total": "sum of the income lines",
    "pay_total": "sum of the staff groups' pay",
    "surplus": "total income - total pay - non-pay + efficiency savings",
}
