"""WCAG 2.2 AA for the dashboard's colours: the contrast arithmetic on known answers, every text colour the app
uses against its background, and colour-blind-safe heatmap scales."""
from __future__ import annotations

import re

import pytest

from ibp_pipeline.dashboards import contrast, theme
from ibp_pipeline.dashboards.contrast import colour_difference, contrast_ratio, lightness, simulate


def test_contrast_ratio_known_answers():
    assert contrast_ratio("#000000", "#FFFFFF") == pytest.approx(21.0)
    assert contrast_ratio("#FFFFFF", "#000000") == pytest.approx(21.0)  # order does not matter
    assert contrast_ratio("#768692", "#FFFFFF") == pytest.approx(3.75, abs=0.01)  # NHS mid grey: fails AA
    assert contrast_ratio("#425563", "#FFFFFF") == pytest.approx(7.75, abs=0.01)  # NHS dark grey
    assert contrast_ratio("#005EB8", "#FFFFFF") == pytest.approx(6.38, abs=0.01)  # NHS blue
    assert contrast_ratio("#777777", "#FFFFFF") == pytest.approx(4.48, abs=0.01)  # the classic just-fails grey
    assert contrast_ratio("#abc", "#AABBCC") == pytest.approx(1.0)
    assert contrast.relative_luminance("#FFFFFF") == pytest.approx(1.0)
    assert contrast.relative_luminance("#000000") == pytest.approx(0.0)
    with pytest.raises(ValueError):
        contrast.rgb("#12345")


def test_lightness_and_simulation_known_answers():
    assert lightness("#FFFFFF") == pytest.approx(100, abs=0.01)
    assert lightness("#000000") == pytest.approx(0, abs=0.01)
    assert lightness("#777777") == pytest.approx(50.0, abs=0.5)
    for kind in contrast.CVD_MATRICES:  # greys look the same to everyone (each matrix row sums to 1)
        assert colour_difference(simulate("#808080", kind), "#808080") < 1
    # the old heatmap's ends, red and green, collapse for a deuteranope; NHS orange and dark blue do not
    assert colour_difference(simulate(theme.NHS_RED, "deuteranopia"), simulate(theme.NHS_GREEN, "deuteranopia")) < 25
    assert colour_difference(simulate(theme.NHS_ORANGE, "deuteranopia"),
                             simulate(theme.NHS_DARK_BLUE, "deuteranopia")) > 100


def test_darkened_fill_keeps_its_hue_and_reaches_aa():
    fill = contrast.darken_until(theme.MDC_COMMON, theme.NHS_WHITE)
    assert contrast_ratio(theme.NHS_WHITE, fill) >= 4.5 > contrast_ratio(theme.NHS_WHITE, theme.MDC_COMMON)
    assert contrast.darken_until(theme.NHS_DARK_BLUE, theme.NHS_WHITE) == theme.NHS_DARK_BLUE  # already fine


@pytest.mark.parametrize("where,text,background", theme.text_pairs(), ids=lambda v: str(v))
def test_every_text_colour_meets_aa(where, text, background):
    ratio = contrast_ratio(text, background)
    assert ratio >= contrast.AA_TEXT, f"{where}: {text} on {background} is {ratio:.2f}:1, under 4.5:1"


def test_text_pairs_cover_the_streamlit_theme_and_the_plotly_template():
    st_theme = theme.streamlit_theme()
    pairs = {(t.upper(), b.upper()) for _, t, b in theme.text_pairs()}
    assert (st_theme["textColor"].upper(), st_theme["backgroundColor"].upper()) in pairs
    assert (st_theme["textColor"].upper(), st_theme["secondaryBackgroundColor"].upper()) in pairs
    theme.register_plotly_template()
    import plotly.io as pio

    layout = pio.templates["nhs"].layout
    for colour in (layout.font.color, layout.xaxis.tickfont.color, layout.yaxis.tickfont.color,
                   layout.legend.font.color):
        assert (colour.upper(), layout.paper_bgcolor.upper()) in pairs
        assert contrast_ratio(colour, layout.paper_bgcolor) >= contrast.AA_TEXT
    css_text_colours = set(re.findall(r"(?<![-\w])(?:color|fill):\s*(#[0-9A-Fa-f]{6})", theme.APP_CSS))
    assert css_text_colours and css_text_colours <= {t for _, t, _ in theme.text_pairs()}, css_text_colours
    assert theme.NHS_MID_GREY not in css_text_colours


def test_pills_are_readable_on_every_meaning_colour():
    for fill in (theme.MDC_COMMON, theme.MDC_IMPROVEMENT, theme.MDC_CONCERN, theme.MDC_NEUTRAL, theme.NHS_MID_GREY,
                 theme.NHS_GREEN, theme.NHS_RED):
        background, text = theme.pill_colours(fill)
        assert contrast_ratio(text, background) >= contrast.AA_TEXT, fill


def test_focus_ring_is_visible_on_white_and_in_the_css():
    yellow, dark = theme.FOCUS_RING
    assert contrast_ratio(dark, theme.NHS_WHITE) >= contrast.AA_NON_TEXT
    assert contrast_ratio(yellow, dark) >= contrast.AA_NON_TEXT
    assert ":focus-visible" in theme.APP_CSS and yellow in theme.APP_CSS


def _stops(scale: list) -> list[str]:
    return [c for _, c in scale]


@pytest.mark.parametrize("kind", sorted(contrast.CVD_MATRICES))
def test_scales_stay_distinguishable_with_colour_blindness(kind):
    seq, div = _stops(theme.SEQUENTIAL_SCALE), _stops(theme.DIVERGING_SCALE)
    assert colour_difference(simulate(seq[0], kind), simulate(seq[-1], kind)) > 40
    assert colour_difference(simulate(div[0], kind), simulate(div[-1], kind)) > 40
    mid = len(div) // 2  # each end and its half-way stop stay apart from the middle too
    for i in (0, 1, len(div) - 2, len(div) - 1):
        assert colour_difference(simulate(div[i], kind), simulate(div[mid], kind)) > 10, (kind, div[i])


def test_sequential_is_monotonic_in_lightness_and_diverging_peaks_in_the_middle():
    seq = [lightness(c) for c in _stops(theme.SEQUENTIAL_SCALE)]
    assert all(a > b + 5 for a, b in zip(seq, seq[1:])), seq
    div = [lightness(c) for c in _stops(theme.DIVERGING_SCALE)]
    mid = len(div) // 2
    assert all(a < b for a, b in zip(div[:mid], div[1:mid + 1])), div
    assert all(a > b for a, b in zip(div[mid:], div[mid + 1:])), div
    for scale in (theme.SEQUENTIAL_SCALE, theme.DIVERGING_SCALE):
        positions = [p for p, _ in scale]
        assert positions[0] == 0 and positions[-1] == 1 and positions == sorted(positions)
