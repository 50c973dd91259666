"""Read one table out of a published workbook (XLSX or legacy XLS) as text cells: the right sheet, the header
row below the title rows, the data down to the footnotes.

Why not "first sheet, first row": NHS England's web files put ten or so title rows (Title:, Period:,
Published:) above a group-label row and the header, an England total row first, blank spacer rows, and notes
below the data; several tables share a workbook. The spec names the headers it needs; the sheet and row that
hold them are found, so a moved header row or a reordered workbook still reads. Row numbers are the sheet's own
(Excel's, 1-based) and every header keeps its column letter, so a message can say `Provider!F17`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from .reading import (ROW, FileRefused, TextTable, _too_large, _unique_headers, check_workbook, one_line,
                      show_name)
from .source_spec import SourceSpec, norm_header

PROBE_ROWS = 60  # a header further down than this is not a publication's header


def column_letter(index: int) -> str:
    """0 -> 'A', 27 -> 'AB'."""
    out = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out


def _open(path: Path):
    import fastexcel  # imported on use: only workbook publications need it

    try:
        return fastexcel.read_excel(path)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # fastexcel raises several types; a Rust panic is a BaseException
        kind = "legacy Excel (.xls)" if path.suffix.lower() == ".xls" else "Excel"
        raise FileRefused(f"not a readable {kind} workbook ({type(exc).__name__}: {one_line(exc)[:120]})",
                          "not_xlsx") from exc


def _grid(reader, sheet: str, n_rows: int | None = None) -> tuple[list[list[str | None]], list[int]]:
    """The sheet's cells as text from row 1 (blank rows kept, so index + 1 is Excel's row number), and the
    absolute column index of each grid column."""
    try:
        sh = reader.load_sheet(sheet, header_row=None, skip_rows=0, dtypes="string", n_rows=n_rows)
        frame = sh.to_polars()
        cols = [c.absolute_index for c in sh.available_columns()]
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        raise FileRefused(f"sheet '{show_name(sheet, 60)}' cannot be read ({type(exc).__name__}: "
                          f"{one_line(exc)[:120]})", "not_xlsx") from exc
    rows = [[None if v is None or not str(v).strip() else str(v) for v in row] for row in frame.rows()]
    return rows, cols


def headers_of(rows: list[list[str | None]], h: int) -> list[str]:
    """The header row's cells; a header repeated under several group labels (KH03's 'General & Acute' under
    Available, Occupied and % Occupied) takes its group label in front, carried right from where it starts."""
    raw = [(c or "").strip() for c in rows[h]]
    groups = [(c or "").strip() for c in rows[h - 1]] if h > 0 else [""] * len(raw)
    seen: dict[str, int] = {}
    for c in raw:
        seen[c] = seen.get(c, 0) + 1
    out, group = [], ""
    for i, c in enumerate(raw):
        group = groups[i] if i < len(groups) and groups[i] else (group if c else "")
        out.append(f"{group} {c}" if c and seen[c] > 1 and group else c)
    return out


@dataclass
class HeaderMatch:
    sheet: str
    row: int  # 0-based index into the grid
    found: int
    needed: int
    missing: list[str]

    @property
    def complete(self) -> bool:
        return not self.missing


def required_headers(spec: SourceSpec) -> list[str]:
    """Headers the sheet itself must hold (the period may come from the title rows instead)."""
    synthetic = {"Period"} if spec.period_label else set()
    return [c.header for c in spec.columns if c.required and c.header not in synthetic]


def find_header(rows: list[list[str | None]], spec: SourceSpec, sheet: str) -> HeaderMatch:
    """The row holding the most of the spec's headers (all of them, when it is the spec's table)."""
    needed = required_headers(spec)
    keys = [norm_header(h) for h in needed]
    best = HeaderMatch(sheet, -1, 0, len(needed), needed)
    for i in range(min(len(rows), PROBE_ROWS)):
        if sum(1 for c in rows[i] if c) < 2:
            continue
        present = {norm_header(h) for h in headers_of(rows, i) if h}
        found = [h for h, k in zip(needed, keys) if k in present]
        if len(found) > best.found:
            best = HeaderMatch(sheet, i, len(found), len(needed), [h for h in needed if h not in found])
            if best.complete:
                break
    return best


def sheet_order(names: list[str], spec: SourceSpec) -> list[str]:
    """The spec's named sheets first (names compared ignoring case and spacing), then the others."""
    wanted = [norm_header(s) for s in spec.sheets]
    return sorted(names, key=lambda n: wanted.index(norm_header(n)) if norm_header(n) in wanted else len(wanted))


def locate(reader, spec: SourceSpec) -> HeaderMatch:
    """The sheet and header row of the spec's table, or FileRefused saying what was found instead."""
    best: HeaderMatch | None = None
    for name in sheet_order(list(reader.sheet_names), spec):
        rows, _cols = _grid(reader, name, PROBE_ROWS)
        match = find_header(rows, spec, name)
        if match.complete:
            return match
        if best is None or match.found > best.found:
            best = match
    sheets = ", ".join(f"'{show_name(s, 40)}'" for s in reader.sheet_names[:8])
    if best is None or best.found == 0:
        raise FileRefused(f"no sheet holds the header of {spec.title} (sheets: {sheets})", "header_not_found")
    miss = ", ".join(f"'{m}'" for m in best.missing[:4]) + (" ..." if len(best.missing) > 4 else "")
    raise FileRefused(f"no sheet holds the whole header of {spec.title}: sheet '{show_name(best.sheet, 40)}' row "
                      f"{best.row + 1} comes closest with {best.found} of {best.needed} columns, missing {miss}",
                      "header_not_found")


def title_value(rows: list[list[str | None]], above: int, label: str) -> str | None:
    """The value beside a title label ('Period:' -> 'July 2025') in the rows above the header."""
    key = norm_header(label)
    for row in rows[:above]:
        for i, cell in enumerate(row):
            if cell and norm_header(cell) == key:
                return next((c.strip() for c in row[i + 1:] if c and c.strip()), None)
    return None


def data_rows(rows: list[list[str | None]], start: int) -> tuple[list[int], int]:
    """Indices of the data rows below the header: blank rows skipped, and the notes below the data (a trailing
    run of rows with one cell or none) left out; returns (indices, footnote rows left out)."""
    filled = [sum(1 for c in row if c) for row in rows]
    end = len(rows)
    while end > start and filled[end - 1] <= 1:
        end -= 1
    footnotes = sum(1 for i in range(end, len(rows)) if filled[i])
    return [i for i in range(start, end) if filled[i]], footnotes


def read_sheet(path: Path, spec: SourceSpec, max_bytes: int) -> TextTable:
    """The spec's table from a workbook, as text cells with Excel row numbers; FileRefused when it is not there."""
    size = path.stat().st_size
    if size > max_bytes:
        raise _too_large(f"file is {size:,} bytes", max_bytes, size)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        check_workbook(path, max_bytes)
    reader = _open(path)
    match = locate(reader, spec)
    rows, cols = _grid(reader, match.sheet)
    headers = _unique_headers(headers_of(rows, match.row))
    keep, footnotes = data_rows(rows, match.row + 1)
    columns = {h: pl.Series(h, [rows[i][j] if j < len(rows[i]) else None for i in keep], dtype=pl.Utf8)
               for j, h in enumerate(headers)}
    frame = pl.DataFrame(columns).with_columns(pl.Series(ROW, [i + 1 for i in keep], dtype=pl.Int64))
    letters = {h: column_letter(cols[j]) for j, h in enumerate(headers) if j < len(cols)}
    notes = [f"sheet '{match.sheet}', header on row {match.row + 1}"]
    if footnotes:
        notes.append(f"{footnotes} note row{'s' if footnotes > 1 else ''} below the data not read")
    if spec.period_label:
        period = title_value(rows, match.row, spec.period_label)
        if period is None:
            raise FileRefused(f"sheet '{match.sheet}': no '{spec.period_label}' in the title rows above the header "
                              "(row {0}), so the month the figures describe is unknown".format(match.row + 1),
                              "period_not_found")
        frame = frame.with_columns(pl.lit(period, pl.Utf8).alias("Period"))
        headers = [*headers, "Period"]
        notes.append(f"period '{period}' from the title rows")
    if spec.total_row and spec.org_column:
        label_header, label = spec.total_row
        org_header = spec.column(spec.org_column).header
        by_norm = {norm_header(h): h for h in headers}
        lab, org = by_norm.get(norm_header(label_header)), by_norm.get(norm_header(org_header))
        if lab and org:
            is_total = (pl.col(lab).str.strip_chars().str.to_lowercase() == label.lower()) & pl.col(org).is_null()
            frame = frame.with_columns(pl.when(is_total).then(pl.lit(spec.total_code)).otherwise(pl.col(org))
                                       .alias(org))
    return TextTable(frame, headers, "xlsx", sheet=match.sheet, columns=letters, notes=notes)
