"""The planning assumptions document (documents/plan_assumptions.yaml): staff groups with their pay, on-costs and
the plan's assumptions, validated on load so a mistake names the field."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from ..config import DOCUMENTS

PATH = DOCUMENTS / "plan_assumptions.yaml"


class OnCosts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    employer_pension_rate: float = Field(ge=0, le=1)
    employer_ni_rate: float = Field(ge=0, le=1)
    employer_ni_threshold_gbp: float = Field(ge=0)
    apprenticeship_levy_rate: float = Field(ge=0, le=1)


class StaffGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z_]+$")
    label: str
    annual_basic_pay_gbp: float = Field(gt=0)
    pay_basis: str

    @property
    def metric_id(self) -> str:
        """Its FTE in NHS Workforce Statistics (s1_current_state.metric_values)."""
        return f"workforce_fte_{self.id}"


class Assumption(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z_]+$")
    value: float
    unit: str
    label: str
    source: str


class PlanAssumptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    on_costs: OnCosts
    staff_groups: list[StaffGroup]
    assumptions: list[Assumption]

    def value(self, assumption_id: str) -> float:
        return next(a.value for a in self.assumptions if a.id == assumption_id)


@lru_cache(maxsize=4)
def load(path: Path = PATH) -> PlanAssumptions:
    return PlanAssumptions.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def annual_cost_per_fte(basic_pay: float, on: OnCosts) -> float:
    """Basic pay plus employer pension, apprenticeship levy and National Insurance above the threshold."""
    return (basic_pay * (1 + on.employer_pension_rate + on.apprenticeship_levy_rate)
            + on.employer_ni_rate * max(0.0, basic_pay - on.employer_ni_threshold_gbp))


def on_cost_text(on: OnCosts) -> str:
    return (f"basic pay + employer pension {on.employer_pension_rate:.1%} + apprenticeship levy "
            f"{on.apprenticeship_levy_rate:.1%} + employer National Insurance {on.employer_ni_rate:.0%} above "
            f"GBP {on.employer_ni_threshold_gbp:,.0f}")
