"""The Workforce page: the Six Steps workforce plan of the organisation's plan (plan.workforce_six_steps), by staff
group and financial year, with the month-by-month picture for one staff group.

Data functions take the served database; pure functions reshape and draw, tested on small hand-made frames."""
from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from . import theme
from .serving import Serving

FTE_COLUMNS = {"required_fte": "Required (own ratio)", "required_fte_peer_low": "Required, peers' low",
               "required_fte_peer_high": "Required, peers' high", "available_fte": "Available",
               "planned_substantive_fte": "Planned substantive", "planned_bank_fte": "Planned bank",
               "planned_agency_fte": "Planned agency", "gap_fte": "Gap (required - available)",
               "recruitment_fte": "Recruitment beyond replacement", "unbridged_fte": "Left unbridged"}


def six_steps(db: Serving, plan_id: str, version: int) -> pl.DataFrame:
    if not db.has_table("plan", "workforce_six_steps"):
        return pl.DataFrame()
    return db.query("""select * from plan.workforce_six_steps where plan_id = $p and version = $v
                       order by staff_group, month""", {"p": plan_id, "v": version})


def by_year(frame: pl.DataFrame) -> pl.DataFrame:
    """Each staff group and financial year: FTE averaged over the year, the cost of bank and agency summed."""
    return (frame.group_by("staff_group_label", "financial_year", maintain_order=True)
            .agg(*[pl.col(c).mean().alias(label) for c, label in FTE_COLUMNS.items()],
                 pl.col("bridge_cost_gbp").sum().alias("Bank and agency cost (£)"),
                 pl.col("peer_count").first().alias("Peers"))
            .rename({"staff_group_label": "Staff group", "financial_year": "Year"}))


def activity_index(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.group_by("month").agg(pl.col("activity_index").first()).sort("month")


def group_figure(frame: pl.DataFrame, label: str, height: int = 380) -> go.Figure:
    """One staff group by month: available staff, the plan's recruitment, bank and agency stacked, against the
    requirement (a line) and the peers' range (a band)."""
    g = frame.filter(pl.col("staff_group_label") == label).sort("month")
    x = g["month"].to_list()
    fig = go.Figure()
    if g["required_fte_peer_low"].null_count() < g.height:
        fig.add_trace(go.Scatter(x=x, y=g["required_fte_peer_high"].to_list(), line=dict(width=0),
                                 showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=x, y=g["required_fte_peer_low"].to_list(), fill="tonexty",
                                 fillcolor="rgba(0,94,184,0.12)", line=dict(width=0),
                                 name="Required at peers' ratios (25th to 75th percentile)"))
    recruit = g["recruitment_fte"].clip(lower_bound=0)
    for name, values, colour in (("Available (staff in post carried forward)", g["available_fte"], theme.NHS_BLUE),
                                 ("Planned recruitment beyond replacement", recruit, theme.NHS_AQUA_GREEN),
                                 ("Planned bank", g["planned_bank_fte"], theme.NHS_PURPLE),
                                 ("Planned agency", g["planned_agency_fte"], theme.NHS_ORANGE)):
        fig.add_trace(go.Bar(x=x, y=values.to_list(), name=name, marker_color=colour))
    fig.add_trace(go.Scatter(x=x, y=g["required_fte"].to_list(), mode="lines", name="Required (own ratio)",
                             line=dict(color=theme.NHS_BLACK, width=3)))
    fig.update_layout(barmode="stack", height=height, margin=dict(l=10, r=10, t=30, b=10),
                      yaxis_title="FTE", legend=dict(orientation="h", y=-0.2))
    return fig
