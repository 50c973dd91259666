"""Plotly figures shared by the pages and the board pack; pure functions of frames, so they are tested directly."""
from __future__ import annotations

import textwrap
from datetime import date

import plotly.graph_objects as go
import polars as pl

from . import theme


def with_gaps(frame: pl.DataFrame, months: int = 1) -> pl.DataFrame:
    """The frame with an empty row for every missing period between its first and last (monthly, or every
    `months` months), so a line breaks at a gap instead of joining across it: a series that jumps from March
    2025 to April 2026 shows thirteen missing months, never a made-up slope."""
    if frame.height < 2:
        return frame
    frame = frame.sort("period_start")
    start, end = frame["period_start"].min(), frame["period_start"].max()
    every = pl.date_range(start, end, f"{months}mo", eager=True).alias("period_start")
    return pl.DataFrame(every).join(frame, on="period_start", how="left")


def gap_annotation(fig: go.Figure, frame: pl.DataFrame) -> None:
    """Say on the chart that a gap is a gap (months not published, or not loaded), not a zero."""
    missing = frame.filter(pl.col("value").is_null()).height if "value" in frame.columns else 0
    if missing:
        fig.add_annotation(text=f"Gaps: {missing} month{'s' if missing > 1 else ''} with no figure are left blank",
                           showarrow=False, x=1, y=1.0, xref="paper", yref="paper", xanchor="right",
                           yanchor="bottom", font=dict(size=11, color=theme.NHS_DARK_GREY))  # above the plot,
        # top right: the legend sits below the plot and the title top left


def coverage_phrase(coverage: str, source: bool = False) -> str:
    """A metric_values coverage value in short: without the source title it starts with (kept with source), the
    restatement of past months on today's ICBs said in brackets ('RTT full CSV data file: every provider ...' ->
    'every provider ...')."""
    from ..step1_current_state.sources import BY_NAME

    text, _, restated = coverage.partition(" Restated:")
    for title in sorted((s.title for s in BY_NAME.values()), key=len, reverse=True):
        if not source and text.startswith(f"{title}: "):
            text = text[len(title) + 2:]
            break
    return text + (" (restated on today's ICBs)" if restated else "")


def coverage_changes(frame: pl.DataFrame) -> list[tuple[date, str, str]]:
    """(first month, coverage from then, coverage before) wherever the providers a plotted total covers change
    (metric_values.coverage of the months with a value): a total that steps because its source changed is marked,
    not read as a change in performance. Empty when the frame has no coverage (trusts' own figures)."""
    if "coverage" not in frame.columns:
        return []
    rows = frame.filter(pl.col("coverage").is_not_null()).sort("period_start")
    if "value" in rows.columns:
        rows = rows.filter(pl.col("value").is_not_null())
    months, covers = rows["period_start"].to_list(), rows["coverage"].to_list()
    return [(m, c, b) for m, c, b in zip(months[1:], covers[1:], covers) if c != b]


def coverage_note(month: date, after: str, before: str) -> str:
    """'From April 2026: every provider NHS England publishes ...; before: the organisations in the file', in the
    coverage values' own words (with their sources when the words alone are the same)."""
    now, then = coverage_phrase(after), coverage_phrase(before)
    if now == then:
        now, then = coverage_phrase(after, source=True), coverage_phrase(before, source=True)
    return f"From {month:%B %Y}: {now}; before: {then}"


def coverage_notes(frame: pl.DataFrame) -> list[str]:
    """The coverage_note of every change in the frame, for a page to say in text beside the chart (a chart's
    labels are not read out by a screen reader)."""
    return [coverage_note(*change) for change in coverage_changes(frame)]


def _wrap(text: str, width: int = 48, lines: int | None = None) -> str:
    """Plotly text broken into lines; cut to `lines` lines with an ellipsis (the hover then says it whole)."""
    parts = textwrap.wrap(text, width, max_lines=lines, placeholder=" …") if lines else textwrap.wrap(text, width)
    return "<br>".join(parts)


def coverage_hover(frame: pl.DataFrame) -> list[str]:
    """Per row, '<br>Covers: <source>: <providers>' for the hover text ('' where the row has no coverage)."""
    if "coverage" not in frame.columns:
        return [""] * frame.height
    return ["" if c is None else "<br>" + _wrap(f"Covers: {coverage_phrase(c, source=True)}", 60)
            for c in frame["coverage"].to_list()]


def coverage_marks(fig: go.Figure, frame: pl.DataFrame) -> None:
    """A dotted vertical line at the first month of each new coverage, with its note beside it (four lines at
    most, whole on hover; stacked down the plot when there are several, so they never overlap)."""
    changes = coverage_changes(frame)
    if not changes:
        return
    months = frame["period_start"].drop_nulls()
    first, last = months.min(), months.max()
    for i, (month, after, before) in enumerate(changes):
        note = coverage_note(month, after, before)
        fig.add_shape(type="line", x0=month, x1=month, y0=0, y1=1, yref="paper", layer="below",
                      line=dict(color=theme.NHS_DARK_GREY, dash="dot", width=1.5))
        right_half = (month - first).days > 0.6 * max((last - first).days, 1)
        fig.add_annotation(text=_wrap(note, 52, lines=4), hovertext=_wrap(note, 60), x=month, y=1 - 0.2 * i,
                           xref="x", yref="paper", showarrow=False, xanchor="right" if right_half else "left",
                           yanchor="top", align="left", font=dict(size=10, color=theme.NHS_DARK_GREY),
                           bgcolor="rgba(255,255,255,0.85)")


def spc_figure(spc: pl.DataFrame, targets: pl.DataFrame | None = None, *, title: str = "",
               unit: str = "", height: int = 380) -> go.Figure:
    """A Making Data Count XmR chart: values, centre line, process limits, special-cause points coloured by
    improvement or concern, and the target (a flat standard or a month-by-month trajectory).

    spc: rows of s2_triple_aim.spc for one series (period_start, value, mean, lpl, upl, point_type,
    special_cause_type; coverage optional: where the providers a total covers change, the chart marks it);
    targets: period_start, target_value, standard_name (primary targets), optional."""
    fig = go.Figure()
    if spc.is_empty():
        fig.add_annotation(text="No data for this measure in the period", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
        _finish(fig, title, height, unit)
        return fig
    spc = with_gaps(spc, 3 if spc.height > 1 and _quarterly(spc) else 1)
    x = spc["period_start"].to_list()
    suffix = "%" if unit == "percent" else ""
    lx, limits = period_breaks(spc, ("upl", "lpl", "mean"))
    fig.add_trace(go.Scatter(x=lx, y=limits["upl"], name="Process limits", mode="lines",
                             line=dict(color=theme.NHS_MID_GREY, dash="dash", width=1), legendgroup="limits",
                             hovertemplate="upper process limit %{y:.1f}" + suffix + "<extra></extra>"))
    fig.add_trace(go.Scatter(x=lx, y=limits["lpl"], name="Lower limit", mode="lines", showlegend=False,
                             line=dict(color=theme.NHS_MID_GREY, dash="dash", width=1), legendgroup="limits",
                             hovertemplate="lower process limit %{y:.1f}" + suffix + "<extra></extra>"))
    fig.add_trace(go.Scatter(x=lx, y=limits["mean"], name="Mean", mode="lines",
                             line=dict(color=theme.NHS_BLACK, width=1),
                             hovertemplate="mean %{y:.1f}" + suffix + "<extra></extra>"))
    fig.add_trace(go.Scatter(x=x, y=spc["value"], name="Value", mode="lines",
                             line=dict(color=theme.NHS_MID_GREY, width=1.5), hoverinfo="skip", showlegend=False))
    kinds = spc.with_columns(pl.col("point_type").str.replace(r"_(high|low)$", ""))
    names = {"common_cause": "Common cause", "special_cause_improvement": "Special cause: improvement",
             "special_cause_concern": "Special cause: concern", "special_cause_neutral": "Special cause: neutral"}
    for kind, label in names.items():
        part = kinds.filter(pl.col("point_type") == kind)
        if part.is_empty():
            continue
        fig.add_trace(go.Scatter(
            x=part["period_start"].to_list(), y=part["value"], name=label, mode="markers",
            marker=dict(color=theme.POINT_COLOURS[kind], size=8, line=dict(color=theme.NHS_WHITE, width=1)),
            customdata=list(zip(part["special_cause_type"].to_list(), coverage_hover(part))),
            hovertemplate="%{x|%b %Y}: %{y:.1f}" + suffix + "<br>%{customdata[0]}%{customdata[1]}<extra></extra>"))
    _add_targets(fig, targets, suffix)
    gap_annotation(fig, spc)
    coverage_marks(fig, spc)
    rebase_marks(fig, spc)
    _finish(fig, title, height, unit)
    return fig


def period_breaks(spc: pl.DataFrame, columns: tuple[str, ...]) -> tuple[list, dict[str, list]]:
    """x and the columns' values with a break (None) where a new SPC period (rebase_group) starts, so the centre
    line and limits of one baseline are never joined to the next's by a slope."""
    x = spc["period_start"].to_list()
    values = {c: spc[c].to_list() for c in columns}
    if "rebase_group" not in spc.columns:
        return x, values
    groups = spc["rebase_group"].fill_null(strategy="forward").to_list()
    out_x: list = []
    out = {c: [] for c in columns}
    for i, month in enumerate(x):
        if i and groups[i] is not None and groups[i - 1] is not None and groups[i] != groups[i - 1]:
            out_x.append(month)
            for c in columns:
                out[c].append(None)
        out_x.append(month)
        for c in columns:
            out[c].append(values[c][i])
    return out_x, out


def rebase_months(spc: pl.DataFrame) -> list[tuple[date, str]]:
    """(first month, why) of each SPC period that starts after the rows' first month: where the limits were
    recalculated, for the chart's marks and the page's words (rows without a period, a gap, are skipped)."""
    if spc.is_empty() or "rebase_group" not in spc.columns:
        return []
    rows = spc.filter(pl.col("rebase_group").is_not_null()).sort("period_start")
    groups, months, reasons = rows["rebase_group"], rows["period_start"], rows["period_reason"]
    return [(m, r) for g0, g, m, r in zip(groups, groups[1:], months[1:], reasons[1:]) if g != g0]


def rebase_marks(fig: go.Figure, spc: pl.DataFrame) -> None:
    """A dashed vertical line where the limits were recalculated, labelled 'Limits recalculated' with the reason
    on hover, so a step in the limits is read as a stated rebase."""
    for month, reason in rebase_months(spc):
        fig.add_shape(type="line", x0=month, x1=month, y0=0, y1=1, yref="paper", layer="below",
                      line=dict(color=theme.NHS_DARK_BLUE, dash="dash", width=1))
        fig.add_annotation(text="Limits recalculated", hovertext=_wrap(f"From {month:%B %Y}: {reason}", 60),
                           x=month, y=0, xref="x", yref="paper", showarrow=False, xanchor="left",
                           yanchor="bottom", font=dict(size=10, color=theme.NHS_DARK_BLUE),
                           bgcolor="rgba(255,255,255,0.85)")


def _quarterly(frame: pl.DataFrame) -> bool:
    """A quarterly series: every period starts in January, April, July or October and none is a month apart."""
    months = frame.sort("period_start")["period_start"].dt.month().to_list()
    return all(m in (1, 4, 7, 10) for m in months) and all(
        (b - a) % 12 != 1 for a, b in zip(months, months[1:]))


def _add_targets(fig: go.Figure, targets: pl.DataFrame | None, suffix: str) -> None:
    """One dotted red line per standard, never joined across standards: when the primary target changes from
    the constitutional standard to a planning trajectory the chart shows two lines, not a cliff."""
    if targets is None or targets.is_empty():
        return
    targets = targets.sort("period_start")
    names = targets["standard_name"].unique(maintain_order=True).to_list() if "standard_name" in targets.columns \
        else [None]
    for i, name in enumerate(names):
        part = targets if name is None else targets.filter(pl.col("standard_name") == name)
        fig.add_trace(go.Scatter(
            x=part["period_start"].to_list(), y=part["target_value"], mode="lines",
            name=(name if len(names) > 1 and name else "Target / trajectory"),
            line=dict(color=theme.NHS_RED if i == len(names) - 1 else theme.NHS_DARK_RED, width=2,
                      dash="dot" if i == len(names) - 1 else "dashdot"),
            hovertemplate="%{x|%b %Y} target %{y:.1f}" + suffix
                          + (f"<br>{name}" if name else "") + "<extra></extra>"))


def _finish(fig: go.Figure, title: str, height: int, unit: str) -> None:
    """Title above, legend below the plot (so neither hides the other at laptop width)."""
    fig.update_layout(title=dict(text=title, x=0, xanchor="left"), height=height, hovermode="closest",
                      yaxis_title=unit or None, margin=dict(l=10, r=10, t=50 if title else 20, b=10),
                      legend=dict(orientation="h", yanchor="top", y=-0.12, x=0))


def fan_figure(history: pl.DataFrame, forecast: pl.DataFrame, targets: pl.DataFrame | None = None, *,
               title: str = "", unit: str = "", height: int = 380) -> go.Figure:
    """A forecast fan: history, the mean forecast, 80% and 95% intervals, and the target or trajectory.

    history: period_start, value (coverage optional: its changes are marked); forecast: period_start, mean, lo80,
    hi80, lo95, hi95."""
    fig = go.Figure()
    suffix = "%" if unit == "percent" else ""
    if not forecast.is_empty():
        f = forecast.sort("period_start")
        x = f["period_start"].to_list()
        for lo, hi, name, colour in (("lo95", "hi95", "95% interval", "rgba(65,182,230,0.25)"),
                                     ("lo80", "hi80", "80% interval", "rgba(0,94,184,0.30)")):
            fig.add_trace(go.Scatter(x=x + x[::-1], y=f[hi].to_list() + f[lo].to_list()[::-1], fill="toself",
                                     fillcolor=colour, line=dict(width=0), name=name, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=x, y=f["mean"], name="Forecast", mode="lines",
                                 line=dict(color=theme.NHS_DARK_BLUE, width=2, dash="dash"),
                                 customdata=f.select("lo80", "hi80").to_numpy(),
                                 hovertemplate="%{x|%b %Y} forecast %{y:.1f}" + suffix
                                 + " (80%: %{customdata[0]:.1f} to %{customdata[1]:.1f})<extra></extra>"))
    if not history.is_empty():
        h = with_gaps(history.select("period_start", "value", *(["coverage"] if "coverage" in history.columns
                                                                 else [])), 3 if _quarterly(history) else 1)
        fig.add_trace(go.Scatter(x=h["period_start"].to_list(), y=h["value"], name="Actual", mode="lines+markers",
                                 line=dict(color=theme.NHS_BLUE, width=2), marker=dict(size=5),
                                 customdata=coverage_hover(h),
                                 hovertemplate="%{x|%b %Y} actual %{y:.1f}" + suffix + "%{customdata}<extra></extra>"))
        gap_annotation(fig, h)
        coverage_marks(fig, h)
    _add_targets(fig, targets, suffix)
    _finish(fig, title, height, unit)
    return fig
