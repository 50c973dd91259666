"""Which publication is this file? Decided by what it holds (its header row, its sheets, its column count), with
the file name as a hint only.

Why by content: NHS England's download names carry random suffixes (`October-2025-CSV-hg6dl.csv`), browsers add
` (2)`, analysts rename files. A file recognised by nothing is refused with one line saying what was found (the
header row, or the sheets) and which publication it looks closest to, so the analyst can tell a wrong download
from a changed layout.
"""
from __future__ import annotations

import csv
import fnmatch
import io
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .reading import FileRefused, check_workbook, csv_text, is_workbook, max_input_bytes, show_name
from .source_spec import SourceSpec, norm_header
from .sources import SOURCES

PROBE_LINES = 25


class Unrecognised(FileRefused):
    """No known publication holds this: the message says what was found and the closest publication."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "unrecognised_file")


@dataclass(frozen=True)
class Fit:
    spec: SourceSpec
    found: int  # required headers present (or 1/0 for a headerless layout)
    needed: int
    where: str  # 'header row' or "sheet 'Provider' row 14"
    missing: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return self.found == self.needed

    @property
    def share(self) -> float:
        return self.found / self.needed if self.needed else 0.0


def name_hint(spec: SourceSpec, file_name: str) -> bool:
    """The file name matches one of the spec's usual names (a hint that breaks ties, never a requirement)."""
    name = file_name.lower().removesuffix(".gz")
    name = re.sub(r" \(\d+\)(?=\.[a-z]+$)", "", name)  # a browser's ' (2)'
    return any(fnmatch.fnmatch(name, p.lower()) for p in spec.patterns)


def _required(spec: SourceSpec) -> list[str]:
    return [c.header for c in spec.columns if c.required]


def header_fit(spec: SourceSpec, headers: list[str], where: str) -> Fit:
    present = {norm_header(h) for h in headers}
    needed = _required(spec)
    missing = tuple(h for h in needed if norm_header(h) not in present)
    return Fit(spec, len(needed) - len(missing), len(needed), where, missing)


def headerless_fit(spec: SourceSpec, rows: list[list[str]]) -> Fit:
    """A headerless layout fits when every probed row has its column count and most names match its pattern."""
    width = len(spec.positions)
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows or any(len(r) != width for r in rows):
        return Fit(spec, 0, 1, f"{len(rows[0]) if rows else 0} columns and no header row")
    pattern = re.compile(spec.name_pattern or ".")
    named = sum(1 for r in rows if pattern.search(r[1]))
    ok = named * 2 > len(rows)
    return Fit(spec, int(ok), 1, f"{width} columns and no header row")


PROBE_BYTES = 256 * 1024  # the start of a file is enough to recognise it (the RTT extract unpacks to 82 MB)


def _csv_rows(path: Path, max_bytes: int) -> list[list[str]]:
    text, _encoding, _entry = csv_text(path, max_bytes, head=PROBE_BYTES)  # already bounded, cut at a line end
    try:
        return [r for _, r in zip(range(PROBE_LINES), csv.reader(io.StringIO(text, newline="")))]
    except csv.Error as exc:
        raise FileRefused(f"not a readable CSV file ({exc})", "not_csv") from exc


def _csv_fits(path: Path, max_bytes: int) -> tuple[list[Fit], str]:
    rows = _csv_rows(path, max_bytes)
    header = [h.strip() for h in rows[0]] if rows else []
    fits = []
    for spec in SOURCES:
        if spec.layout == "csv":
            fits.append(header_fit(spec, header, "header row"))
        elif spec.layout == "headerless":
            fits.append(headerless_fit(spec, rows))
    shown = ", ".join(h[:40] for h in header[:6]) + (f", ... ({len(header)} columns)" if len(header) > 6 else "")
    return fits, f"header row '{show_name(shown, 200)}'"


def _workbook_fits(path: Path, max_bytes: int) -> tuple[list[Fit], str]:
    from .workbooks import PROBE_ROWS, _grid, _open, find_header, sheet_order  # on use: only workbooks need them

    if path.suffix.lower() in (".xlsx", ".xlsm"):
        check_workbook(path, max_bytes)
    reader = _open(path)
    grids = {name: _grid(reader, name, PROBE_ROWS)[0] for name in reader.sheet_names}
    fits = []
    for spec in SOURCES:
        if spec.layout != "sheet":
            continue
        best = None
        for name in sheet_order(list(grids), spec):
            m = find_header(grids[name], spec, name)
            if best is None or m.found > best.found:
                best = m
            if m.complete:
                break
        if best is not None:
            fits.append(Fit(spec, best.found, best.needed, f"sheet '{best.sheet}' row {best.row + 1}",
                            tuple(best.missing)))
    names = ", ".join(f"'{show_name(n, 40)}'" for n in list(grids)[:8])
    return fits, f"sheets {names}" if grids else "no sheets"


@lru_cache(maxsize=4096)
def _identify(path: str, _size: int, _mtime: int, max_bytes: int) -> tuple[SourceSpec, ...]:
    p = Path(path)
    fits, found = (_workbook_fits if is_workbook(p) else _csv_fits)(p, max_bytes)
    complete = [f for f in fits if f.complete]
    if complete:
        # The most specific layout wins (more of its columns present), then the name hint; a workbook may hold
        # several publications' tables on different sheets, and each is read.
        complete.sort(key=lambda f: (-f.found, not name_hint(f.spec, p.name), f.spec.name))
        best_per_place: dict[str, SourceSpec] = {}
        for f in complete:
            best_per_place.setdefault(f.where if is_workbook(p) else "file", f.spec)
        return tuple(best_per_place.values())
    close = max(fits, key=lambda f: (f.share, name_hint(f.spec, p.name)), default=None)
    hint = ""
    if close is not None and close.found:
        miss = ", ".join(f"'{m}'" for m in close.missing[:3]) + (" ..." if len(close.missing) > 3 else "")
        hint = (f"; closest: {close.spec.title} ({close.found} of {close.needed} columns in its {close.where}"
                + (f", missing {miss}" if miss else "") + ")")
    raise Unrecognised(f"no known publication holds this file: found {found}{hint}")


def identify(path: Path, max_bytes: int | None = None) -> tuple[SourceSpec, ...]:
    """The publications this file holds (usually one; a workbook may hold several), or Unrecognised / FileRefused
    with one readable line. Cached per file version (path, size, modification time)."""
    st = path.stat()
    return _identify(str(path), st.st_size, st.st_mtime_ns, max_bytes or max_input_bytes())


def recognised_as(path: Path, spec: SourceSpec) -> bool:
    """True when the file holds the spec's publication; unreadable and unrecognised files hold none."""
    try:
        return spec in identify(path)
    except FileRefused:
        return False
