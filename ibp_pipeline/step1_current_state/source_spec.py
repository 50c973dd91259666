"""The shape of a publication spec: one SourceSpec per published file layout, its columns and their kinds.

Kept apart from the registries (sources.py for the tidy files, sources_published.py for the layouts as NHS
England publishes them) so that both can use it without importing each other.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

KINDS = ("text", "code", "number", "count", "fraction", "date", "ae_period", "month_text")
LAYOUTS = ("csv", "sheet", "headerless")


def snake(header: str) -> str:
    """'A&E attendances Type 1' -> 'ae_attendances_type_1'; used for DuckDB column names."""
    s = header.replace("&", "").replace("%", "pct").replace("+", "plus")
    s = re.sub(r"[^0-9a-zA-Z]+", "_", s).strip("_").lower()
    return s


def norm_header(header: str) -> str:
    """Key for matching a published header: case, spacing and stray encoding marks ignored."""
    return re.sub(r"[^0-9a-z&%+]+", " ", header.replace("\ufeff", "").lower()).strip()


@dataclass(frozen=True)
class Column:
    header: str
    kind: str
    name: str = ""
    required: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.header!r}: unknown kind {self.kind!r}")
        if not self.name:
            object.__setattr__(self, "name", snake(self.header))


def C(header: str, kind: str = "text", name: str = "", required: bool = True) -> Column:
    return Column(header, kind, name, required)


def counts(*headers: str) -> tuple[Column, ...]:
    return tuple(C(h, "count") for h in headers)


@dataclass(frozen=True)
class SourceSpec:
    name: str  # raw table name, e.g. raw.ae_monthly_official
    title: str
    folder: str  # folder under data/sources holding the bundled files
    patterns: tuple[str, ...]  # file-name globs (case-insensitive; a .gz suffix is allowed on any)
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # loaded column names that identify a row; period_start counts as a column
    org_column: str | None = None  # loaded name of the ODS code column checked against the registry
    period_column: str | None = None  # loaded name of the column period_start is derived from
    period_grain: str = "month"  # month | quarter | year | snapshot
    ratio_pairs: tuple[tuple[str, str], ...] = ()  # (numerator, denominator)
    reference: bool = False  # organisation reference: loaded before, and not checked against, the registry
    total_code: str | None = None  # org code of a national TOTAL row that must equal the sum of the others
    # org code of rows the publisher could not attribute to any organisation ('UNKNOWN'): loaded and counted in
    # the TOTAL, never an organisation (not in the reference, never provisional) and never quarantined for it
    unassigned_code: str | None = None
    publisher: str = "NHS England"
    null_tokens: tuple[str, ...] = ("", "-", "*", "NA", "N/A", "Not Applicable", ":", "..")
    extra_key_ok: bool = False
    notes: str = ""
    closed: bool = False  # a historical series no longer published: no freshness expectation
    max_age_days: int | None = None  # freshness allowance after the latest period ends (default by grain)
    # How the file is laid out (a CSV may also come gzipped or as the one CSV inside a ZIP):
    layout: str = "csv"  # csv (header row first) | sheet (a workbook sheet below title rows) | headerless
    sheets: tuple[str, ...] = ()  # sheet: the sheet names to look for first (any sheet whose header fits is read)
    period_label: str | None = None  # sheet: a title-row label ('Period:') whose value gives every row's period
    positions: tuple[str, ...] = ()  # headerless: the name of every column by position (the file's layout)
    total_row: tuple[str, str] | None = None  # (header, label): a row with that label and no code is the TOTAL
    name_pattern: str | None = None  # headerless: a regex most names (second column) match, to tell files apart
    # An official publication names each organisation: a code the reference does not know yet, with a name in
    # this column, enters as a provisional organisation instead of being quarantined.
    org_name_column: str | None = None
    coverage: str = ""  # which providers the England total of this source covers, in plain English
    # A snapshot that states no date of its own (the ODS data files): the newest value of these loaded date
    # columns dates each file, and latest.<source> takes every key from the newest snapshot, not the latest load.
    snapshot_dates: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"source {self.name}: unknown layout {self.layout!r}")

    @property
    def table(self) -> str:
        return f"raw.{self.name}"

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def loaded_columns(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def count_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.kind == "count"]


RTT_BANDS = tuple(f"wk_gt_{i}_to_{i + 1}" for i in range(104)) + ("wk_104_plus",)
DM01_BANDS = tuple(f"wk_{i:02d}_to_{i + 1:02d}" for i in range(13)) + ("wk_13_plus",)
