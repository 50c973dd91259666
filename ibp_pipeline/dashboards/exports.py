"""Tables as files a leader can take away: CSV (UTF-8 with BOM, so Excel shows '£' and accents) and Excel."""
from __future__ import annotations

import io
import re

import polars as pl


def safe_filename(text: str) -> str:
    """'Gaps & needs: RXL' -> 'gaps-needs-rxl': only letters, digits and dashes reach the download name."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80] or "table"


def csv_bytes(frame: pl.DataFrame) -> bytes:
    return b"\xef\xbb\xbf" + frame.write_csv().encode("utf-8")


def excel_bytes(frame: pl.DataFrame, sheet: str = "data") -> bytes:
    """An .xlsx workbook with one sheet, header row frozen and autofitted columns (xlsxwriter via polars)."""
    buf = io.BytesIO()
    clean = frame.with_columns(pl.col(pl.Object).cast(pl.String)) if pl.Object in frame.dtypes else frame
    clean.write_excel(buf, worksheet=re.sub(r"[\[\]:*?/\\]", " ", sheet)[:31] or "data", autofit=True,
                      freeze_panes=(1, 0))
    return buf.getvalue()
