"""Turn a published file into a frame of text cells, or a one-line reason why it cannot be read.

Why text: every cell is kept exactly as published so that validation can say which row, column and value was
wrong; nothing is coerced silently. Row numbers are the file's own line numbers (header = line 1), as an
analyst sees them in a spreadsheet.
"""
from __future__ import annotations

import csv
import functools
import gzip
import io
import math
import re
import zipfile
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat

import polars as pl

from .. import settings
from .source_spec import norm_header

ROW = "_row_number"
MB = 1024 * 1024
DEFAULT_MAX_MB = 200  # the largest bundled file is 25 MB uncompressed (rtt_trust_waits_over_18_52.csv.gz)
DEFAULT_MAX_BYTES = DEFAULT_MAX_MB * MB  # decompressed; refuses gzip/zip bombs and runaway files
CHUNK = MB
MAX_ZIP_ENTRIES = 10_000  # a real workbook has a few dozen parts
MAX_ZIP_RATIO = 100  # an entry expanding more than this (and over 1 MB) is taken for a zip bomb
ZIP_RATIO_FLOOR = MB
BYTES_PER_CELL = 8  # a sheet may span at most max_bytes / 8 cells: calamine allocates ~32 bytes per cell
LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def one_line(text: object) -> str:
    """Text safe for a one-line message: line breaks and control characters become a space."""
    return LINE_BREAKS.sub(" ", str(text)).strip()


def show_name(name: str, limit: int = 120) -> str:
    """A file or entry name as shown in a message: one line, printable, not endless (a name may hold any byte)."""
    name = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    name = one_line(name)
    return name if len(name) <= limit else name[: limit - 3] + "..."


class FileRefused(Exception):
    """The whole file cannot be loaded; the message is one readable line and names the cause."""

    def __init__(self, message: str, rule: str = "unreadable_file") -> None:
        super().__init__(one_line(message))
        self.rule = rule


def max_input_bytes() -> int:
    """The largest input accepted (after decompression): IBP_MAX_FILE_MB megabytes, default 200."""
    raw = settings.get("IBP_MAX_FILE_MB", "")
    if not raw:
        return DEFAULT_MAX_BYTES
    try:
        mb = float(raw)
    except ValueError:
        mb = math.nan
    if not (math.isfinite(mb) and mb > 0):
        raise ValueError(f"IBP_MAX_FILE_MB must be a positive number of megabytes (default {DEFAULT_MAX_MB}), "
                         f"not {raw!r}")
    return max(1, int(mb * MB))


def _mb(n: float) -> str:
    if n < MB:
        return f"{n / 1024:,.1f} KB"
    return f"{n / MB:,.1f} MB" if n < 1000 * MB else f"{n / MB:,.0f} MB"


def _limit(max_bytes: int) -> str:
    """The limit as set: 200 MB, 0.02 MB."""
    return f"{round(max_bytes / MB, 3):,}".rstrip("0").rstrip(".") + " MB"


def _too_large(what: str, max_bytes: int, needed: int | None = None) -> FileRefused:
    """One line: how big, the limit, and how to raise it."""
    limit = _limit(max_bytes)
    advice = (f"set IBP_MAX_FILE_MB={math.ceil(needed / MB)} (or more)" if needed
              else "set IBP_MAX_FILE_MB higher")
    return FileRefused(f"{what}, over the input limit of {limit}; to load it, {advice} and run again",
                       "file_too_large")


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
    sheet: str | None = None  # the workbook sheet read, if any
    columns: dict[str, str] = field(default_factory=dict)  # header -> spreadsheet column letter (workbooks)
    notes: list[str] = field(default_factory=list)  # what the reader set aside or inferred, for the load message


def _gunzip(path: Path, max_bytes: int) -> Iterator[bytes]:
    """Decompressed chunks of a .gz file, stopping (refused) as soon as they pass max_bytes: a gzip bomb is
    never decompressed beyond the limit, in memory or on disk."""
    total = 0
    try:
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                total += len(chunk)
                if total > max_bytes:
                    raise _too_large(f"file decompresses to more than {_mb(max_bytes)}", max_bytes)
                yield chunk
    except (OSError, EOFError, zlib.error) as exc:
        raise FileRefused(f"not a readable gzip file ({exc})", "not_csv") from exc


def check_size(path: Path, max_bytes: int | None = None) -> None:
    """Raise FileRefused if the file is over the limit once decompressed (or an unsafe or bomb-like workbook)."""
    max_bytes = max_bytes or max_input_bytes()
    size = path.stat().st_size
    if size > max_bytes:
        raise _too_large(f"file is {size:,} bytes ({_mb(size)})", max_bytes, size)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        check_workbook(path, max_bytes)
    elif is_zip_archive(path):
        try:
            with zipfile.ZipFile(path) as zf:
                _guard_zip(zf, max_bytes, "ZIP")
        except zipfile.BadZipFile as exc:
            raise FileRefused(f"not a readable ZIP file ({exc})", "not_zip") from exc
    elif path.name.lower().endswith(".gz"):
        for _chunk in _gunzip(path, max_bytes):
            pass


def read_bytes(path: Path, max_bytes: int | None = None) -> bytes | bytearray:
    """Read a file, gunzipping .gz, refusing anything larger than max_bytes once decompressed."""
    max_bytes = max_bytes or max_input_bytes()
    size = path.stat().st_size
    if size > max_bytes:
        raise _too_large(f"file is {size:,} bytes ({_mb(size)})", max_bytes, size)
    if path.name.lower().endswith(".gz"):
        data = bytearray()  # grows to at most max_bytes; returned as is (no second copy)
        for chunk in _gunzip(path, max_bytes):
            data += chunk
        return data
    return path.read_bytes()


UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


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
    if len(head) >= 8 and any(head) and (not any(head[1::2]) or not any(head[0::2])):  # NUL every other byte
        return "it looks like UTF-16 text without a byte-order mark, not CSV text (save it as CSV UTF-8)"
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
    """Blank headers named, repeats numbered (a, a.1, a.2), never clashing with another header or _row_number."""
    used: set[str] = set()
    out = []
    for h in headers:
        h = h or "unnamed"
        name, n = h, 0
        while name in used or name == ROW:
            n += 1
            name = f"{h}.{n}"
        used.add(name)
        out.append(name)
    return out


FAST_CSV_BYTES = 8 * MB  # above this a CSV is parsed by polars (multi-threaded) when its rows are regular


def _regular_width(text: str, width: int) -> bool:
    """True when every line has exactly `width` fields and no quoted cell spans lines or holds a quote, so a
    fast parser reads the same rows as csv.reader would. Lines without quotes are counted with polars; the few
    with quotes go through csv.reader."""
    lines = pl.Series(text.split("\n")).str.strip_suffix("\r")
    if lines.len() and lines[-1] == "":
        lines = lines.head(lines.len() - 1)
    lines = lines.slice(1)  # the header
    if (lines == "").any():
        return False
    quoted = lines.str.contains('"', literal=True)
    plain = lines.filter(~quoted)
    if (plain.str.count_matches(",", literal=True) != width - 1).any():
        return False
    for line in lines.filter(quoted).to_list():
        if line.count('"') % 2:
            return False
        if len(next(csv.reader([line]))) != width:
            return False
    return True


TYPED_KINDS: dict[str, type[pl.DataType]] = {"count": pl.Int64, "number": pl.Float64, "fraction": pl.Float64}


def typed_headers(spec, headers: list[str]) -> dict[str, type[pl.DataType]]:
    """The published headers of the spec's number columns, with the type polars may parse them as directly:
    counts as whole numbers (so a cell shows as published), other numbers as floats."""
    kinds = {norm_header(c.header): TYPED_KINDS[c.kind] for c in getattr(spec, "columns", ()) if c.kind in TYPED_KINDS}
    return {h: kinds[norm_header(h)] for h in headers if norm_header(h) in kinds}


def _polars_csv(data: bytes, headers: list[str], typed: dict[str, type[pl.DataType]]) -> pl.DataFrame | None:
    """Every cell as text, except the `typed` columns when every one of their cells is a plain finite number
    (the RTT extract's 108 count columns: no string per cell, no cast afterwards); None when polars cannot read
    the rows at all (a row with too many fields, say: the careful parser says which)."""
    read = functools.partial(pl.read_csv, io.BytesIO(data), has_header=False, skip_rows=1, infer_schema=False,
                             new_columns=headers)
    if typed:
        try:
            frame = read(schema_overrides=typed)
            floats = [h for h, t in typed.items() if t is pl.Float64]
            if not floats or not frame.select(pl.any_horizontal(
                    [~pl.col(h).is_finite() & pl.col(h).is_not_null() for h in floats]).any()).item():
                return frame
        except pl.exceptions.PolarsError:
            pass  # a cell that is not a plain number ('-', '1,234', ' 12'): every cell as text, parsed later
    try:
        return read()
    except pl.exceptions.PolarsError:
        return None


def parse_csv_fast(text: str, encoding: str, spec=None) -> TextTable | None:
    """A large regular CSV parsed by polars, every cell as text (with a spec, its number columns as numbers when
    every cell of them is one); None when the file is irregular (ragged rows, blank lines, quoted line breaks):
    then parse_csv reads it and sets the odd rows aside."""
    header = next(csv.reader([text[: text.find("\n") if "\n" in text else len(text)].rstrip("\r")]))
    headers = _unique_headers([h.strip() for h in header])
    if len(headers) < 2:
        return None
    # The regularity check and the parse run side by side (both mostly outside the GIL); the parse is kept only
    # when the rows are regular, so the result is exactly what parse_csv would read.
    with ThreadPoolExecutor(max_workers=1) as pool:
        regular = pool.submit(_regular_width, text, len(headers))
        frame = _polars_csv(text.encode("utf-8"), headers, typed_headers(spec, headers))
        if not regular.result() or frame is None:
            return None
    frame = frame.with_columns(pl.int_range(2, frame.height + 2, dtype=pl.Int64).alias(ROW))
    return TextTable(frame, headers, encoding)


def parse_headerless(text: str, encoding: str, positions: tuple[str, ...]) -> TextTable:
    """A CSV with no header row (the ODS data files): columns are named by position; a file whose first row has
    another column count is another layout, refused as a whole."""
    first = next(csv.reader(io.StringIO(text, newline="")), [])
    if len(first) != len(positions):
        raise FileRefused(f"row 1 has {len(first)} columns; this layout has {len(positions)} columns and no header "
                          "row (an ODS data file as published)", "wrong_layout")
    table = parse_csv(",".join(positions) + "\r\n" + text, encoding)
    frame = table.frame.with_columns(pl.col(ROW) - 1)  # line 1 of the file is the first data row
    ragged = [RaggedRow(r.row_number - 1, r.fields, r.expected, r.text) for r in table.ragged]
    return TextTable(frame, table.headers, encoding, ragged)


def csv_text(path: Path, max_bytes: int, head: int | None = None) -> tuple[str, str, str | None]:
    """(text, encoding, entry name) of a CSV file, a gzipped CSV, or the one CSV inside a ZIP; with `head`, only
    about that many bytes from the start (enough to recognise a file without unpacking all of it)."""
    entry = None
    if is_zip_archive(path):
        data, entry = read_zip_csv(path, max_bytes, head)
    elif head is not None:
        data = _head_bytes(path, head)
    else:
        data = read_bytes(path, max_bytes)
    if head is not None and len(data) >= head:
        cut = data.rfind(b"\n")  # whole lines only (a cut multi-byte character would read as Windows-1252)
        data = data[: cut + 1] if cut > 0 else data
    if not data.strip():
        raise FileRefused("file is empty", "empty_file")
    utf16 = data[:2] in UTF16_BOMS
    if utf16:  # Excel's "Unicode text" and some exports: decode it rather than call it binary
        try:
            data = data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileRefused(f"not a CSV file: it starts with a UTF-16 byte-order mark but is not UTF-16 text "
                              f"(byte {exc.start:,})", "not_csv") from exc
    reason = looks_binary(data)
    if reason:
        raise FileRefused(f"not a CSV file: {reason}", "not_csv")
    text, encoding = decode(data)
    return text, "utf-16" if utf16 else encoding, entry


def read_table(path: Path, max_bytes: int | None = None, spec=None) -> TextTable:
    """Read a publication into text cells, or raise FileRefused: a CSV (plain, gzipped or the one CSV in a ZIP),
    a workbook sheet (XLSX or legacy XLS) or a CSV with no header row, as the spec's layout says. Without a spec
    a workbook's first sheet is read with its first row as the header."""
    max_bytes = max_bytes or max_input_bytes()
    layout = getattr(spec, "layout", "csv")
    if is_workbook(path):
        if layout == "sheet":
            from .workbooks import read_sheet

            return read_sheet(path, spec, max_bytes)
        return read_xlsx(path, max_bytes)
    text, encoding, entry = csv_text(path, max_bytes)
    if layout == "headerless":
        table = parse_headerless(text, encoding, spec.positions)
    else:
        table = (len(text) > FAST_CSV_BYTES and parse_csv_fast(text, encoding, spec)) or parse_csv(text, encoding)
    if entry:
        table.notes.append(f"read {show_name(entry, 80)} from the ZIP")
    return table


WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xls")
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy Excel 97-2003 (.xls) compound file


def _head(path: Path, n: int = 8) -> bytes:
    with path.open("rb") as fh:
        return fh.read(n)


def is_workbook(path: Path) -> bool:
    """An Excel workbook: by its suffix, or by its bytes (a legacy .xls compound file)."""
    return path.suffix.lower() in WORKBOOK_SUFFIXES or _head(path) == OLE2_MAGIC


def is_zip_archive(path: Path) -> bool:
    """A ZIP that is not a workbook (an extract such as the RTT full CSV data file)."""
    return path.suffix.lower() not in WORKBOOK_SUFFIXES and _head(path, 4) == b"PK\x03\x04"


JUNK_ENTRY = re.compile(r"(^|/)(__MACOSX/|\._|\.DS_Store$|Thumbs\.db$|desktop\.ini$)", re.IGNORECASE)


def _guard_zip(zf: zipfile.ZipFile, max_bytes: int, what: str, workbook: bool = False) -> list[zipfile.ZipInfo]:
    """The limits every archive (a ZIP extract or an XLSX workbook) passes before a byte is unpacked: entry
    count, zip slip, compression method, declared size and ratio (a bomb)."""
    infos = zf.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        real = " (a real one has a few dozen)" if workbook else ""
        raise FileRefused(f"{what} has {len(infos):,} parts{real}; refused as a likely zip bomb", "zip_bomb")
    for info in infos:
        name = show_name(info.filename, 80)
        if _unsafe_entry(info.filename):
            raise FileRefused(f"{what} part '{name}' has an absolute or '..' path; refused (zip slip)",
                              "unsafe_zip_entry")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            why = "not one a workbook uses" if workbook else "which is not read here (stored or deflated only)"
            raise FileRefused(f"{what} part '{name}' uses compression method {info.compress_type}, {why}",
                              "not_xlsx" if workbook else "not_zip")
    total = sum(i.file_size for i in infos)
    if total > max_bytes:
        raise _too_large(f"{what} unpacks to {total:,} bytes ({_mb(total)})", max_bytes, total)
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > ZIP_RATIO_FLOOR and ratio > MAX_ZIP_RATIO:
            raise FileRefused(f"{what} part '{show_name(info.filename, 80)}' expands {ratio:,.0f} times "
                              f"({info.compress_size:,} to {info.file_size:,} bytes); refused as a likely zip bomb",
                              "zip_bomb")
    return infos


def zip_csv_entry(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> zipfile.ZipInfo:
    """The one CSV of a publication's ZIP; Mac resource forks (__MACOSX/, ._*) and desktop junk are ignored."""
    real = [i for i in infos if not i.is_dir() and not JUNK_ENTRY.search(i.filename)]
    csvs = [i for i in real if i.filename.lower().endswith((".csv", ".txt"))]
    if len(csvs) == 1:
        return csvs[0]
    names = ", ".join(show_name(i.filename, 60) for i in (csvs or real)[:4]) or "nothing"
    if not csvs:
        raise FileRefused(f"ZIP holds no CSV file (it holds {names}); a publication's ZIP holds one CSV",
                          "zip_without_csv")
    raise FileRefused(f"ZIP holds {len(csvs)} CSV files ({names}); a publication's ZIP holds one, so which to "
                      "load is not clear: load them one by one", "zip_several_csv")


def _head_bytes(path: Path, n: int) -> bytes:
    """The first n bytes of a file, decompressed when it is gzipped."""
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                return fh.read(n)
        with path.open("rb") as fh:
            return fh.read(n)
    except (OSError, EOFError, zlib.error) as exc:
        raise FileRefused(f"not a readable gzip file ({exc})", "not_csv") from exc


def read_zip_csv(path: Path, max_bytes: int, head: int | None = None) -> tuple[bytes, str]:
    """The bytes of the one CSV inside a ZIP, unpacked no further than max_bytes (or `head` bytes)."""
    try:
        zf = zipfile.ZipFile(path)
    except Exception as exc:  # BadZipFile, and struct/value errors on damaged directories
        raise FileRefused(f"not a readable ZIP file ({type(exc).__name__}: {exc})", "not_zip") from exc
    with zf:
        entry = zip_csv_entry(zf, _guard_zip(zf, max_bytes, "ZIP"))
        out = bytearray()
        try:
            with zf.open(entry) as fh:  # stops at the declared size and checks the CRC
                while chunk := fh.read(min(CHUNK, (head or max_bytes + 1) - len(out))):
                    out += chunk
                    if head and len(out) >= head:
                        return bytes(out[:head]), entry.filename
                    if len(out) > max_bytes:
                        raise _too_large(f"ZIP entry unpacks to more than {_mb(max_bytes)}", max_bytes)
        except FileRefused:
            raise
        except Exception as exc:
            raise FileRefused(f"not a readable ZIP file (entry '{show_name(entry.filename, 80)}': "
                              f"{type(exc).__name__}: {exc})", "not_zip") from exc
        return bytes(out), entry.filename


def _unsafe_entry(name: str) -> bool:
    """A zip entry that would land outside the folder it is unpacked in (zip slip)."""
    return (name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) is not None
            or ".." in re.split(r"[/\\]", name))


_COLUMN_NUMBERS: dict[str, int] = {}


def _column_number(letters: str) -> int:
    """'A' -> 1, 'XFD' -> 16384 (cached: a sheet repeats a few column letters millions of times)."""
    if len(letters) > 3:  # beyond Excel's last column (XFD): refused, whatever a reader would make of it
        return 10**9
    n = _COLUMN_NUMBERS.get(letters)
    if n is None:
        n = 0
        for ch in letters.upper():
            n = n * 26 + ord(ch) - 64
        if len(_COLUMN_NUMBERS) < 100_000:
            _COLUMN_NUMBERS[letters] = n
    return n


class _SheetExtent:
    """Streams one XML part and tracks the furthest cell: the rectangle calamine will allocate for the sheet.

    A cell's position is its r attribute ('XFD1048576'), or the next column / row when r is absent."""

    def __init__(self) -> None:
        self.rows = self.cols = 0  # extent, 1-based
        self._row = 0
        self._col = 0
        self.parser = expat.ParserCreate()
        self.parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self.parser.StartDoctypeDeclHandler = self._doctype
        self.parser.EntityDeclHandler = self._doctype
        self.parser.StartElementHandler = self._start

    def _doctype(self, *_args) -> None:
        raise FileRefused("a workbook part declares a DOCTYPE or entities (an XML bomb?); a real workbook never "
                          "does", "zip_bomb")

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        if name == "c" or name.endswith(":c"):
            r = attrs.get("r", "").replace("$", "")
            digits = r.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
            if r and digits.isascii() and digits.isdigit() and len(digits) < len(r):
                self._col = _column_number(r[: len(r) - len(digits)])
                row = int(digits) if len(digits) < 12 else 10**12
                if row > self.rows:
                    self.rows = row
            else:
                self._col += 1
            if self._col > self.cols:
                self.cols = self._col
        elif name == "row" or name.endswith(":row"):
            r = attrs.get("r", "")
            self._row = (int(r) if len(r) < 12 else 10**12) if r.isascii() and r.isdigit() else self._row + 1
            self._col = 0
            if self._row > self.rows:
                self.rows = self._row

    def feed(self, chunk: bytes, final: bool = False) -> None:
        self.parser.Parse(chunk, final)


def check_workbook(path: Path, max_bytes: int) -> None:
    """check_workbook_once for this version of the file (path, size, modification time): a workbook is scanned
    once however often it is recognised and read in a run (the scan is most of a big workbook's load time)."""
    st = path.stat()
    _checked_workbook(str(path), st.st_size, st.st_mtime_ns, max_bytes)


@functools.lru_cache(maxsize=256)
def _checked_workbook(path: str, _size: int, _mtime: int, max_bytes: int) -> None:
    check_workbook_once(Path(path), max_bytes)  # a refusal raises, and lru_cache keeps only successes


def check_workbook_once(path: Path, max_bytes: int) -> None:
    """Refuse a workbook that is not safe to hand to fastexcel: zip slip, too big unpacked, a zip or cell bomb.

    Declared sizes are checked first (cheap); then every part is streamed once, without keeping it, so that a
    part larger than declared fails its CRC check, and every XML part is scanned for its furthest cell (a sheet
    of two cells at A1 and XFD1048576 makes calamine allocate hundreds of GB and abort the process)."""
    try:
        zf = zipfile.ZipFile(path)
    except Exception as exc:  # BadZipFile, but also ValueError/struct errors on damaged central directories
        raise FileRefused(f"not a readable XLSX workbook ({type(exc).__name__}: {exc})", "not_xlsx") from exc
    with zf:
        infos = _guard_zip(zf, max_bytes, "workbook", workbook=True)
        max_cells = max(1, max_bytes // BYTES_PER_CELL)
        for info in infos:
            if info.is_dir():
                continue
            extent = _SheetExtent() if info.filename.lower().endswith(".xml") else None
            part = show_name(info.filename, 80)
            try:
                with zf.open(info) as fh:  # zipfile stops at the declared size and checks the CRC
                    while chunk := fh.read(CHUNK):
                        if extent:
                            extent.feed(chunk)
                    if extent:
                        extent.feed(b"", final=True)
            except FileRefused:
                raise
            except expat.ExpatError as exc:
                raise FileRefused(f"not a readable XLSX workbook (part '{part}' is not valid XML: {exc})",
                                  "not_xlsx") from exc
            except Exception as exc:  # BadZipFile (CRC), zlib.error, EOFError, encrypted parts...
                raise FileRefused(f"not a readable XLSX workbook (part '{part}': {type(exc).__name__}: {exc})",
                                  "not_xlsx") from exc
            if extent and extent.rows * extent.cols > max_cells:
                raise FileRefused(
                    f"workbook part '{part}' spans {extent.rows:,} rows x {extent.cols:,} columns "
                    f"({extent.rows * extent.cols:,} cells), over the {max_cells:,} cells the input limit of "
                    f"{_limit(max_bytes)} allows (IBP_MAX_FILE_MB); refused as a likely XLSX bomb", "zip_bomb")


def read_xlsx(path: Path, max_bytes: int | None = None) -> TextTable:
    """First sheet of a workbook, as text cells (fastexcel/calamine: no macros, no external links)."""
    max_bytes = max_bytes or max_input_bytes()
    size = path.stat().st_size
    if size > max_bytes:
        raise _too_large(f"file is {size:,} bytes ({_mb(size)})", max_bytes, size)
    check_workbook(path, max_bytes)
    try:
        frame = pl.read_excel(path, sheet_id=1, infer_schema_length=0)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # fastexcel raises several types; a Rust panic is a BaseException
        raise FileRefused(f"not a readable XLSX workbook ({type(exc).__name__}: {str(exc)[:120]})", "not_xlsx") from exc
    frame = frame.select([pl.col(c).cast(pl.Utf8) for c in frame.columns])
    headers = _unique_headers([str(h).strip() for h in frame.columns])
    frame.columns = headers
    frame = frame.with_columns(pl.int_range(2, frame.height + 2, dtype=pl.Int64).alias(ROW))
    return TextTable(frame, headers, "xlsx")
