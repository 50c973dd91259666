"""NHS identity colours and the Making Data Count variation and assurance vocabulary, in one place.

Colours are from the NHS England identity guidelines (https://www.england.nhs.uk/nhsidentity/identity-guidelines/
colours/); the SPC point colours and icon meanings follow NHS England's Making Data Count guidance and
NHSRplotthedots, so a chart here reads the same as one from any NHS board pack."""
from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio

NHS_BLUE = "#005EB8"
NHS_DARK_BLUE = "#003087"
NHS_BRIGHT_BLUE = "#0072CE"
NHS_LIGHT_BLUE = "#41B6E6"
NHS_AQUA_BLUE = "#00A9CE"
NHS_BLACK = "#231F20"
NHS_DARK_GREY = "#425563"
NHS_MID_GREY = "#768692"
NHS_PALE_GREY = "#E8EDEE"
NHS_WHITE = "#FFFFFF"
NHS_DARK_GREEN = "#006747"
NHS_GREEN = "#009639"
NHS_AQUA_GREEN = "#00A499"
NHS_PURPLE = "#330072"
NHS_DARK_PINK = "#7C2855"
NHS_DARK_RED = "#8A1538"
NHS_RED = "#DA291C"
NHS_ORANGE = "#ED8B00"
NHS_WARM_YELLOW = "#FFB81C"

SERIES = [NHS_BLUE, NHS_DARK_GREEN, NHS_ORANGE, NHS_PURPLE, NHS_AQUA_BLUE, NHS_DARK_PINK, NHS_MID_GREY,
          NHS_DARK_BLUE, NHS_AQUA_GREEN, NHS_WARM_YELLOW]

# Making Data Count point colours (NHSRplotthedots: improvement blue, concern orange, common cause grey).
MDC_COMMON = "#7B7D7D"
MDC_IMPROVEMENT = "#289DE0"
MDC_CONCERN = "#FAB428"
MDC_NEUTRAL = "#361475"

POINT_COLOURS = {"common_cause": MDC_COMMON, "special_cause_improvement": MDC_IMPROVEMENT,
                 "special_cause_concern": MDC_CONCERN, "special_cause_neutral": MDC_NEUTRAL}

# Plain-English wording of the variation and assurance icons, for tiles, hovers and the board pack.
VARIATION = {
    "common_cause": ("Common cause", "No significant change: the points vary within the expected range.", MDC_COMMON),
    "special_cause_improvement": ("Improving", "Special cause variation of an improving nature.", MDC_IMPROVEMENT),
    "special_cause_concern": ("Concerning", "Special cause variation of a concerning nature.", MDC_CONCERN),
    "special_cause_neutral_high": ("Higher than usual", "Special cause variation, neither better nor worse "
                                   "(this measure has no better direction): higher than usual.", MDC_NEUTRAL),
    "special_cause_neutral_low": ("Lower than usual", "Special cause variation, neither better nor worse "
                                  "(this measure has no better direction): lower than usual.", MDC_NEUTRAL),
}
ASSURANCE = {
    "consistent_pass": ("Will consistently meet the target", "The whole process range is on the right side of "
                        "the target: without change it will meet it month after month.", MDC_IMPROVEMENT),
    "consistent_fail": ("Will consistently miss the target", "The whole process range is on the wrong side of "
                        "the target: it will not be met without a change to the system.", MDC_CONCERN),
    "inconsistent": ("May or may not meet the target", "The target lies inside the process limits: it will be "
                     "met in some months and missed in others, by chance alone.", MDC_COMMON),
}


def variation_label(code: str | None) -> tuple[str, str, str]:
    """(short label, explanation, colour) for a spc variation code; unknown or missing reads 'Not enough data'."""
    return VARIATION.get(code or "", ("Not enough data", "Too few points to judge variation.", NHS_MID_GREY))


def assurance_label(code: str | None) -> tuple[str, str, str]:
    """(short label, explanation, colour) for a spc assurance code; no target reads 'No target'."""
    return ASSURANCE.get(code or "", ("No target", "No standard or trajectory applies to this measure.",
                                      NHS_MID_GREY))


def register_plotly_template() -> str:
    """An 'nhs' plotly template: Frutiger-like sans-serif (Arial), NHS colours, light grid; returns its name."""
    template = go.layout.Template(layout=go.Layout(
        font=dict(family="Frutiger, Arial, sans-serif", color=NHS_BLACK, size=13),
        colorway=SERIES, paper_bgcolor=NHS_WHITE, plot_bgcolor=NHS_WHITE,
        xaxis=dict(gridcolor=NHS_PALE_GREY, linecolor=NHS_MID_GREY, zeroline=False),
        yaxis=dict(gridcolor=NHS_PALE_GREY, linecolor=NHS_MID_GREY, zeroline=False),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
        margin=dict(l=10, r=10, t=40, b=10), hoverlabel=dict(font_family="Arial"),
    ))
    pio.templates["nhs"] = template
    pio.templates.default = "plotly+nhs"
    return "nhs"


# Streamlit theme (also in dashboards/.streamlit/config.toml) and the CSS the app adds: NHS blue header strip,
# readable tables, visible keyboard focus (WCAG 2.2 focus appearance).
APP_CSS = f"""
<style>
header[data-testid="stHeader"] {{ background: {NHS_BLUE}; }}
.ibp-banner {{ background: {NHS_WARM_YELLOW}; color: {NHS_BLACK}; padding: .4rem .8rem; border-radius: 4px;
  font-weight: 600; margin-bottom: .6rem; }}
.ibp-tile {{ border-left: 6px solid {NHS_BLUE}; background: {NHS_PALE_GREY}; padding: .6rem .8rem; border-radius: 4px;
  margin-bottom: .6rem; min-height: 9.5rem; }}
.ibp-tile h4 {{ margin: 0 0 .2rem 0; font-size: 1rem; color: {NHS_DARK_BLUE}; }}
.ibp-tile .value {{ font-size: 1.7rem; font-weight: 700; color: {NHS_BLACK}; }}
.ibp-tile .meta {{ font-size: .85rem; color: {NHS_DARK_GREY}; }}
.ibp-icon {{ display: inline-block; padding: .05rem .45rem; border-radius: 1rem; color: {NHS_WHITE};
  font-size: .78rem; font-weight: 600; margin-right: .25rem; }}
a:focus, button:focus {{ outline: 3px solid {NHS_WARM_YELLOW} !important; outline-offset: 2px; }}
</style>
"""


def text_on(background: str) -> str:
    """Black or white text, whichever has the higher WCAG contrast ratio on the given background colour."""
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(background.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4))
    lum = 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    return NHS_BLACK if (lum + 0.05) / 0.05 > 1.05 / (lum + 0.05) else NHS_WHITE
