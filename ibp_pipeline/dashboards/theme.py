"""NHS identity colours and the Making Data Count variation and assurance vocabulary, in one place.

Colours are from the NHS England identity guidelines (https://www.england.nhs.uk/nhsidentity/identity-guidelines/
colours/); the SPC point colours and icon meanings follow NHS England's Making Data Count guidance and
NHSRplotthedots, so a chart here reads the same as one from any NHS board pack."""
from __future__ import annotations

import tomllib
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio

from . import contrast

PRODUCT_NAME = "ibp_pipeline — Integrated Business Plan"
STREAMLIT_CONFIG = Path(__file__).resolve().parents[2] / "dashboards" / ".streamlit" / "config.toml"

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

# Colour scales built from NHS identity colours that stay readable with colour-blindness (no red against
# green): sequential runs pale grey to NHS dark blue, lightness falling all the way; diverging runs NHS orange
# (low) through warm yellow and pale grey (the middle) to light blue and NHS dark blue (high).
SEQUENTIAL_SCALE = [[0.0, NHS_PALE_GREY], [0.35, NHS_LIGHT_BLUE], [0.7, NHS_BLUE], [1.0, NHS_DARK_BLUE]]
DIVERGING_SCALE = [[0.0, NHS_ORANGE], [0.25, NHS_WARM_YELLOW], [0.5, NHS_PALE_GREY], [0.75, NHS_LIGHT_BLUE],
                   [1.0, NHS_DARK_BLUE]]

# Small text (captions, tile lines, chart notes and ticks): dark grey, 7.7:1 on white. Mid grey (3.75:1) is kept
# for lines and marks only, never for text.
NHS_TEXT_GREY = NHS_DARK_GREY

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


PLOTLY_FONT = dict(family="Frutiger, Arial, sans-serif", color=NHS_BLACK, size=13)
PLOTLY_TICK_FONT = dict(color=NHS_BLACK)  # tick labels: near-black, never the mid grey of the axis line


def register_plotly_template() -> str:
    """An 'nhs' plotly template: Frutiger-like sans-serif (Arial), NHS colours, light grid, near-black tick
    labels, colour-blind-safe colour scales; returns its name."""
    axis = dict(gridcolor=NHS_PALE_GREY, linecolor=NHS_MID_GREY, zeroline=False, tickfont=PLOTLY_TICK_FONT,
                title_font=dict(color=NHS_BLACK))
    template = go.layout.Template(layout=go.Layout(
        font=PLOTLY_FONT, colorway=SERIES, paper_bgcolor=NHS_WHITE, plot_bgcolor=NHS_WHITE,
        xaxis=axis, yaxis=axis, colorscale=dict(sequential=SEQUENTIAL_SCALE, diverging=DIVERGING_SCALE),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0, font=dict(color=NHS_BLACK)),
        margin=dict(l=10, r=10, t=40, b=10), hoverlabel=dict(font_family="Arial"),
    ))
    pio.templates["nhs"] = template
    pio.templates.default = "plotly+nhs"
    return "nhs"


# Streamlit's chart theme repaints every chart's default text (ticks, axis and subplot titles, legend) in its
# grey (#808495, 3.7:1 on white); the CSS below paints it near-black on every page, whoever wrote the chart.
STREAMLIT_CHART_GREY = "rgb(128, 132, 149)"

# Keyboard focus: a warm yellow ring inside a black one, as the NHS design system does (yellow alone is 1.7:1
# on white; the black ring is 19:1 on white and the yellow 11:1 on black, both over the 3:1 of WCAG 1.4.11).
FOCUS_RING = (NHS_WARM_YELLOW, "#0B0C0C")

# Streamlit theme (also in dashboards/.streamlit/config.toml) and the CSS the app adds: NHS blue header strip
# with the product and organisation names, captions in dark grey (Streamlit fades them to about 4.3:1), visible
# keyboard focus (WCAG 2.2 focus appearance: the NHS design system's warm yellow ring).
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
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p,
[data-testid="stWidgetLabel"] [data-testid="stTooltipIcon"] {{ color: {NHS_TEXT_GREY} !important;
  opacity: 1 !important; }}
.js-plotly-plot .xaxislayer-above text, .js-plotly-plot .yaxislayer-above text,
.js-plotly-plot .infolayer [class*="title"], .js-plotly-plot .infolayer [class*="title"] text,
.js-plotly-plot .legendtext, .js-plotly-plot .colorbar text,
.js-plotly-plot text[style*="{STREAMLIT_CHART_GREY}"] {{ fill: {PLOTLY_TICK_FONT["color"]} !important; }}
.ibp-masthead {{ position: fixed; top: 0; left: 50%; transform: translateX(-50%); height: 3.75rem;
  z-index: 999991; display: flex; flex-direction: column; align-items: center; justify-content: center;
  padding: 0 1rem; background: {NHS_BLUE}; color: {NHS_WHITE}; pointer-events: none; line-height: 1.25;
  font-family: Frutiger, Arial, sans-serif; max-width: 60vw; text-align: center; }}
.ibp-masthead .product {{ font-weight: 700; font-size: 1rem; white-space: nowrap; }}
.ibp-masthead .org {{ font-size: .95rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap;
  max-width: 60vw; }}
a:focus, button:focus {{ outline: 3px solid {NHS_WARM_YELLOW} !important; outline-offset: 2px; }}
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible,
[role="button"]:focus-visible, [role="tab"]:focus-visible, [role="slider"]:focus-visible,
[role="combobox"]:focus-visible, summary:focus-visible, [tabindex]:focus-visible {{
  outline: 3px solid {FOCUS_RING[0]} !important; outline-offset: 0 !important;
  box-shadow: 0 0 0 6px {FOCUS_RING[1]} !important; }}
</style>
"""


def masthead_html(org_title: str | None) -> str:
    """The header strip's words: the product name and the organisation being shown (white on NHS blue)."""
    import html

    org = f'<span class="org">{html.escape(org_title)}</span>' if org_title else ""
    return (f'<div class="ibp-masthead" role="banner" aria-label="{html.escape(PRODUCT_NAME)}">'
            f'<span class="product">{html.escape(PRODUCT_NAME)}</span>{org}</div>')


def pill_colours(fill: str) -> tuple[str, str]:
    """(background, text) for a coloured pill: the readable text colour of text_on, and the fill darkened just
    enough that the text reaches 4.5:1 (mid greys and greens reach only about 4:1 with either black or white)."""
    text = text_on(fill)
    if contrast.contrast_ratio(text, fill) >= contrast.AA_TEXT:
        return fill, text
    return contrast.darken_until(fill, NHS_WHITE), NHS_WHITE


def streamlit_theme(path: Path = STREAMLIT_CONFIG) -> dict[str, str]:
    """The [theme] section of the dashboard's Streamlit config.toml (what Streamlit actually paints)."""
    with open(path, "rb") as f:
        return tomllib.load(f).get("theme", {})


def text_pairs() -> list[tuple[str, str, str]]:
    """(where, text colour, background colour) for every text colour the dashboard uses: the Streamlit theme,
    the CSS above, the plotly template and the pills. The contrast test reads this list, so a colour added to
    the UI belongs here."""
    st_theme = streamlit_theme()
    text, back, second = st_theme["textColor"], st_theme["backgroundColor"], st_theme["secondaryBackgroundColor"]
    pairs = [("Streamlit body text", text, back), ("Streamlit text on the sidebar and inputs", text, second),
             ("Streamlit primary button label", NHS_WHITE, st_theme["primaryColor"]),
             ("links and primary colour as text", st_theme["primaryColor"], back)]
    pairs += TEXT_PAIRS
    pills = {c for _, _, c in (*VARIATION.values(), *ASSURANCE.values())} | {NHS_MID_GREY, NHS_GREEN, NHS_RED,
                                                                             NHS_ORANGE, NHS_AQUA_GREEN,
                                                                             NHS_WARM_YELLOW}
    for fill in sorted(pills):
        background, colour = pill_colours(fill)
        pairs.append((f"pill on {fill}", colour, background))
    return pairs


def text_on(background: str) -> str:
    """Black or white text, whichever has the higher WCAG contrast ratio on the given background colour."""
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(background.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4))
    lum = 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    return NHS_BLACK if (lum + 0.05) / 0.05 > 1.05 / (lum + 0.05) else NHS_WHITE


# Text colours fixed by this module's CSS and plotly template, on their backgrounds (see text_pairs()).
TEXT_PAIRS: list[tuple[str, str, str]] = [
    ("header product and organisation names", NHS_WHITE, NHS_BLUE),
    ("captions", NHS_TEXT_GREY, NHS_WHITE),
    ("captions in the sidebar", NHS_TEXT_GREY, NHS_PALE_GREY),
    ("banner", NHS_BLACK, NHS_WARM_YELLOW),
    ("tile title", NHS_DARK_BLUE, NHS_PALE_GREY),
    ("tile value", NHS_BLACK, NHS_PALE_GREY),
    ("tile lines", NHS_DARK_GREY, NHS_PALE_GREY),
    ("chart text and titles", PLOTLY_FONT["color"], NHS_WHITE),
    ("chart tick labels", PLOTLY_TICK_FONT["color"], NHS_WHITE),
    ("chart notes (gaps, coverage, deadlines)", NHS_DARK_GREY, NHS_WHITE),
]
