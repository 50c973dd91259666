"""Turn a published file into a frame of text cells, or a one-line reason why it cannot be read.

Why text: every cell is kept exactly as published so that validation can say which row, column and value was
wrong; nothing is coerced silently. Row numbers are the file's own line numbers (header = line 1), as an
analyst sees them in a spreadsheet.
"""
from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

ROW = "_row_number"
DEFAULT_MAX_BYTES = 512 * 1024 * 1024  # decompressed; refuses zip bombs and runaway files


class FileRefused(Exception):
    """The whole file cannot be loaded; the message is one readable line and names the cause."""

    def __init__(self, message: str, rule: str = "unreadable_file") -> None:
        super().__init__(message)
        self.rule = rule


@dataclass
class RaggedRow:
    row_number: int
    fields: int
    expected: int
    text: str


@dataclass
class TextTable:
    frame: pl.DataFrame  # one Utf8 column per header (as published) plus _row_number
    headers: list[str]
    encoding: str
    ragged: list[RaggedRow] = field(default_factory=list)


def read_bytes(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Read a file, gunzipping .gz, refusing anything larger than max_bytes once decompressed."""
    size = path.stat().st_size
    if size > max_bytes:
        raise FileRefused(f"file is {size:,} bytes, over the limit of {max_bytes:,}", "file_too_large")
    if path.name.lower().endswith(".gz"):
        try:
            with gzip.open(path, "rb") as fh:
                data = fh.read(max_bytes + 1)
        except (OSError, EOFError) as exc:
            raise FileRefused(f"not a readable gzip file ({exc})", "not_csv") from exc
        if len(data) > max_bytes:
            raise FileRefused(f"decompresses to over {max_bytes:,} bytes", "file_too_large")
        return data
    return path.read_bytes()


def decode(data: bytes) -> tuple[str, str]:
    """UTF-8 first (with or without BOM); Windows-1252 (a superset of Latin-1 for text) as the fallback."""
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "windows-1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def looks_binary(data: bytes) -> str | None:
    """A reason the bytes are not CSV text, or None."""
    head = data[:8192]
    if head.startswith(b"PK\x03\x04"):
        return "it is a ZIP/XLSX workbook, not CSV text (save the sheet as CSV, or use the .xlsx loader)"
    if head.startswith(b"%PDF"):
        return "it is a PDF document, not CSV text"
    if b"\x00" in head:
        return "it contains binary data (NUL bytes), not CSV text"
    controls = sum(1 for b in head if b < 9 or 13 < b < 32)
    if head and controls / len(head) > 0.05:
        return "it contains binary data, not CSV text"
    return None


def parse_csv(text: str, encoding: str) -> TextTable:
    """Parse CSV text; rows whose field count differs from the header are set aside, not guessed."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise FileRefused("file has no header row", "empty_file") from None
    except csv.Error as exc:
        raise FileRefused(f"header row is not valid CSV ({exc})", "not_csv") from exc
    headers = _unique_headers([h.strip() for h in header])
    if len(headers) < 2:
        raise FileRefused(f"header has {len(headers)} column(s); this does not look like a CSV table", "not_csv")
    width = len(headers)
    columns: list[list[str | None]] = [[] for _ in range(width)]
    rows: list[int] = []
    ragged: list[RaggedRow] = []
    try:
        end_of_previous = reader.line_num
        for rec in reader:
            line = end_of_previous + 1  # where this record starts (a quoted cell may span lines)
            end_of_previous = reader.line_num
            if not rec or all(not c.strip() for c in rec):
                continue  # blank line
            if len(rec) != width:
                ragged.append(RaggedRow(line, len(rec), width, ",".join(rec)[:120]))
                continue
            rows.append(line)
            for i, cell in enumerate(rec):
                columns[i].append(cell)
    except csv.Error as exc:
        raise FileRefused(f"row {reader.line_num}: not valid CSV ({exc})", "not_csv") from exc
    frame = pl.DataFrame({h: pl.Series(h, col, dtype=pl.Utf8) for h, col in zip(headers, columns)})
    frame = frame.with_columns(pl.Series(ROW, rows, dtype=pl.Int64))
    return TextTable(frame, headers, encoding, ragged)


def _unique_headers(headers: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for h in headers:
        h = h or "unnamed"
        if h in seen:
            seen[h] += 1
            h = f"{h}.{seen[h]}"
        else:
            seen[h] = 0
        out.append(h)
    return out


def read_table(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> TextTable:
    """Read a CSV (optionally gzipped) or XLSX publication into text cells, or raise FileRefused."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return read_xlsx(path, max_bytes)
    data = read_bytes(path, max_bytes)
    if not data.strip():
        raise FileRefused("file is empty", "empty_file")
    reason = looks_binary(data)
    if reason:
        raise FileRefused(f"not a CSV file: {reason}", "not_csv")
    text, encoding = decode(data)
    return parse_csv(text, encoding)


def read_xlsx(path: Path, max_bytes: int) -> TextTable:
    """First sheet of a workbook, as text cells (fastexcel/calamine: no macros, no external links)."""
    if path.stat().st_size > max_bytes:
        raise FileRefused(f"file is over the limit of {max_bytes:,} bytes", "file_too_large")
    try:
        frame = pl.read_excel(path, sheet_id=1, infer_schema_length=0)
    except Exception as exc:  # fastexcel raises several types for damaged workbooks
        raise FileRefused(f"not a readable XLSX workbook ({type(exc).__name__}: {str(exc)[:120]})", "not_xlsx") from exc
    frame = frame.select([pl.col(c).cast(pl.Utf8) for c in frame.columns])
    headers = [str(h).strip() for h in frame.columns]
    frame.columns = headers
    frame = frame.with_columns(pl.int_range(2, frame.height + 2, dtype=pl.Int64).alias(ROW))
    return TextTable(frame, headers, "xlsx")
