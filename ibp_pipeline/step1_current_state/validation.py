"""Row-level rules applied to a published file before anything is loaded.

Pure functions over polars frames: a file's text cells go in; typed good rows and a table of problems (row,
column, value, rule, one-line message) come out. A row with any problem is kept out of the warehouse and put
in quarantine instead; every other row still loads. File-level failures raise FileRefused.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from .reading import ROW, FileRefused, TextTable, one_line
from .sources import SourceSpec, norm_header

PROBLEM_SCHEMA = {"row_number": pl.Int64, "column": pl.Utf8, "value": pl.Utf8, "rule": pl.Utf8, "message": pl.Utf8}
MONTHS = {m: i + 1 for i, m in enumerate(
    ["JANUARY", "FEBRUARY", "MARCH", "APRIL", "MAY", "JUNE", "JULY", "AUGUST", "SEPTEMBER", "OCTOBER",
     "NOVEMBER", "DECEMBER"])}
EARLIEST_PERIOD = date(2000, 1, 1)
CODE_PATTERN = r"^[A-Z0-9][A-Z0-9_-]{0,11}$"
DTYPES = {"text": pl.Utf8, "code": pl.Utf8, "ae_period": pl.Utf8, "number": pl.Float64, "count": pl.Float64,
          "fraction": pl.Float64, "date": pl.Date}


@dataclass
class Validated:
    good: pl.DataFrame  # spec columns by loaded name, typed, plus period_start (if any) and _row_number
    problems: pl.DataFrame  # PROBLEM_SCHEMA
    rows_read: int
    provisional: dict[str, str] = field(default_factory=dict)  # new organisation code -> its published name
    suppressed: dict[str, int] = field(default_factory=dict)  # suppression mark ('-', '*', '..') -> cells read as missing


def map_headers(spec: SourceSpec, headers: list[str]) -> dict[str, str]:
    """Published header for each spec column; refuses the file naming every missing column."""
    by_norm: dict[str, str] = {}
    for h in headers:
        by_norm.setdefault(norm_header(h), h)
    mapping, missing = {}, []
    for col in spec.columns:
        found = by_norm.get(norm_header(col.header))
        if found is None:
            if col.required:
                missing.append(col)
            continue
        mapping[col.name] = found
    if missing:
        unused = [h for h in headers if h not in mapping.values()]
        parts = []
        for col in missing:
            close = difflib.get_close_matches(col.header, unused, n=1, cutoff=0.6)
            hint = f" (found '{close[0]}': renamed?)" if close else ""
            parts.append(f"'{col.header}'{hint}")
        raise FileRefused(f"missing required column{'s' if len(parts) > 1 else ''} {', '.join(parts)}",
                          "missing_column")
    return mapping


def _one_line_expr(text: pl.Expr) -> pl.Expr:
    return text.str.replace_all(r"[\x00-\x1f\x7f-\x9f\x{2028}\x{2029}]+", " ")


def _problems(frame: pl.DataFrame, mask: pl.Expr, column: str, header: str, rule: str, why: str) -> pl.DataFrame:
    """Problem rows for every row matching mask; `why` holds one '{}' where the value goes.

    The message is assembled with concat_str, not a format template: a published header may itself hold '{}'
    or a line break, and must neither break the template nor the one-line message."""
    bad = frame.filter(mask)
    if bad.height == 0:
        return pl.DataFrame(schema=PROBLEM_SCHEMA)
    value = pl.col(column).cast(pl.Utf8).fill_null("")
    shown = _one_line_expr(value).str.slice(0, 80)
    before, _, after = why.partition("{}")
    return bad.select(
        pl.col(ROW).alias("row_number"),
        pl.lit(header).alias("column"),
        value.alias("value"),
        pl.lit(rule).alias("rule"),
        pl.concat_str([pl.lit("row "), pl.col(ROW).cast(pl.Utf8), pl.lit(f", column '{one_line(header)}': {before}"),
                       shown, pl.lit(after)]).alias("message"),
    )


def _clean_text(spec: SourceSpec, header: str) -> pl.Expr:
    s = pl.col(header).str.strip_chars()
    return pl.when(s.is_in(list(spec.null_tokens))).then(None).otherwise(s)


def _parse_number(raw: pl.Expr) -> pl.Expr:
    """'1,234', ' 12 ', '£5' and '12%' style cells become numbers; anything else stays null.

    'nan', 'inf' and numbers beyond a double's range ('1e309') are not published figures: null, so quarantined."""
    num = raw.str.replace_all(r"[,£]", "").str.strip_chars().str.strip_suffix("%").cast(pl.Float64, strict=False)
    return pl.when(num.is_finite()).then(num)


def _parse_ae_period(raw: pl.Expr) -> pl.Expr:
    """'MSitAE-APRIL-2024' (A&E), 'RTT-April-2026' (RTT): a publication prefix, a month name and a year."""
    parts = raw.str.to_uppercase().str.extract_groups(r"^[A-Z]+-([A-Z]+)-(\d{4})$")
    month = parts.struct.field("1").replace_strict(MONTHS, default=None, return_dtype=pl.Int32)
    year = parts.struct.field("2").cast(pl.Int32, strict=False)
    return pl.date(year, month, 1)


def _parse_month_text(raw: pl.Expr) -> pl.Expr:
    """'July 2025' -> 2025-07-01; a quarter 'April to June 2025' -> its first month, 2025-04-01."""
    parts = raw.str.to_uppercase().str.extract_groups(r"^\s*([A-Z]+)\b(?:\s+TO\s+[A-Z]+)?\s+(\d{4})\s*$")
    month = parts.struct.field("1").replace_strict(MONTHS, default=None, return_dtype=pl.Int32)
    year = parts.struct.field("2").cast(pl.Int32, strict=False)
    return pl.date(year, month, 1)


def _parse_date(raw: pl.Expr) -> pl.Expr:
    """ISO dates (2024-04-01), a workbook's date-time cells (2025-04-01 00:00:00), ODS dates (20241101) and months
    (2026-04, as a ledger extract writes them: the first day of the month)."""
    return pl.coalesce(raw.str.to_date("%Y-%m-%d", strict=False),
                       pl.when(raw.str.len_chars() == 7).then((raw + "-01").str.to_date("%Y-%m-%d", strict=False)),
                       raw.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False).dt.date(),
                       pl.when(raw.str.len_chars() == 8).then(raw.str.to_date("%Y%m%d", strict=False)))


def _finite(num: pl.Expr) -> pl.Expr:
    return pl.when(num.is_finite()).then(num)


NUMBER_KINDS = ("number", "count", "fraction")
CAST = "\x00cast"  # suffix of a plain number column's already-cast copy (no published header holds a NUL)


def _plain_number_columns(spec: SourceSpec, text: pl.DataFrame, mapping: dict[str, str]) -> dict[str, pl.Series]:
    """Number columns whose every cell is empty or a plain number, already cast: all of them are cast in one pass
    (the RTT extract has 108), and a column is plain when the cast left no more empty cells than the text had (a
    column's null count is free to read). Only the other columns go through the full parser (spaces, thousands
    separators, pound and percent signs, suppression marks)."""
    names = [c.name for c in spec.columns if c.name in mapping and c.kind in NUMBER_KINDS]
    if not names or text.height == 0:
        return {}
    cast = text.select([_finite(pl.col(mapping[n]).cast(pl.Float64, strict=False)).alias(n) for n in names])
    return {n: cast[n] for n in names if cast[n].null_count() == text[mapping[n]].null_count()}


def _total_rows(spec: SourceSpec) -> pl.Expr:
    """The publication's own TOTAL row (its period cell is not relied on: A&E files spell it 'TOTAL ')."""
    if not (spec.total_code and spec.org_column):
        return pl.lit(False)
    return pl.col(spec.org_column).str.to_uppercase().fill_null("") == spec.total_code


def type_columns(spec: SourceSpec, text: pl.DataFrame, mapping: dict[str, str],
                 plain: dict[str, pl.Series] | None = None) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """Cast each column by its kind; cells that do not parse become problems, never silent nulls.

    Every rule is evaluated for all columns in one pass first; problem rows are only gathered for the columns
    where a rule fired, so a clean wide file costs one pass, not one per column and rule."""
    plain = _plain_number_columns(spec, text, mapping) if plain is None else plain
    cleaned = text.select(pl.col(ROW), *[
        (pl.col(mapping[c.name]) if c.name in plain else _clean_text(spec, mapping[c.name])).alias(c.name)
        for c in spec.columns if c.name in mapping])  # a problem shows the cell as published
    cleaned = cleaned.hstack([v.alias(f"{n}{CAST}") for n, v in plain.items()])
    is_total = _total_rows(spec) if spec.org_column in mapping else pl.lit(False)
    checks: list[tuple[pl.Expr, str, str, str, str]] = []  # (mask, column, header, rule, why)
    exprs = [pl.col(ROW)]
    for col in spec.columns:
        if col.name not in mapping:
            exprs.append(pl.lit(None, dtype=DTYPES[col.kind]).alias(col.name))
            continue
        raw = pl.col(col.name)
        header = mapping[col.name]
        if col.kind in NUMBER_KINDS:
            if col.name in plain:
                parsed = pl.col(f"{col.name}{CAST}")  # cast already
            else:
                parsed = _parse_number(raw)
                checks.append((raw.is_not_null() & parsed.is_null(), col.name, header, "not_a_number",
                               "'{}' is not a number"))
            if col.kind == "count":
                checks.append((parsed < 0, col.name, header, "negative_count",
                               "{} is negative; counts cannot be below zero"))
            exprs.append(parsed.alias(col.name))
        elif col.kind == "date":
            parsed = _parse_date(raw)
            checks.append((raw.is_not_null() & parsed.is_null(), col.name, header, "not_a_date",
                           "'{}' is not a date (expected YYYY-MM-DD)"))
            exprs.append(parsed.alias(col.name))
        elif col.kind in ("ae_period", "month_text"):
            parsed = _parse_ae_period(raw) if col.kind == "ae_period" else _parse_month_text(raw)
            like = "MSitAE-APRIL-2024 or RTT-April-2026" if col.kind == "ae_period" else "July 2025"
            checks.append(((raw.is_null() | parsed.is_null()) & ~is_total, col.name, header, "not_a_period",
                           f"'{{}}' is not a period like {like}"))
            exprs.append(raw.alias(col.name))
            # the TOTAL row takes the month of the file's other rows
            exprs.append(pl.when(is_total).then(parsed.drop_nulls().mode().min()).otherwise(parsed)
                         .alias("_ae_period_date"))
        elif col.kind == "code":
            up = raw.str.to_uppercase()
            checks.append((up.is_not_null() & ~up.str.contains(CODE_PATTERN), col.name, header, "malformed_code",
                           "'{}' is not a valid code"))
            exprs.append(up.alias(col.name))
        else:
            exprs.append(raw.alias(col.name))
    fired = cleaned.select([c[0].fill_null(False).any().alias(f"_{i}") for i, c in enumerate(checks)]).row(0) \
        if checks and cleaned.height else [False] * len(checks)
    problems = [_problems(cleaned, mask, name, header, rule, why)
                for (mask, name, header, rule, why), hit in zip(checks, fired) if hit]
    return cleaned.select(exprs), problems


def add_period(spec: SourceSpec, typed: pl.DataFrame) -> pl.DataFrame:
    """period_start: first day of the month (or quarter) the row describes."""
    if spec.period_column is None:
        return typed
    kind = spec.column(spec.period_column).kind
    src = pl.col("_ae_period_date") if kind in ("ae_period", "month_text") else pl.col(spec.period_column)
    start = src.dt.month_start()
    if spec.period_grain == "quarter" and kind == "date":
        start = start.dt.offset_by("-2mo")  # quarter_end -> first day of the quarter (a label names its first month)
    out = typed.with_columns(start.alias("period_start"))
    return out.drop("_ae_period_date") if "_ae_period_date" in out.columns else out


def row_rules(spec: SourceSpec, typed: pl.DataFrame, mapping: dict[str, str], known_orgs: frozenset[str] | None,
              today: date) -> list[pl.DataFrame]:
    """Rules across columns: keys present, known organisations, periods in range, numerator <= denominator."""
    problems = []
    for k in {spec.org_column, spec.period_column} - {None}:
        header = mapping.get(k, k)
        problems.append(_problems(typed, pl.col(k).is_null(), k, header, "missing_key",
                                  "value missing in a key column{}"))
    if spec.org_column and known_orgs is not None:
        allowed = set(known_orgs) | {c for c in (spec.total_code, spec.unassigned_code) if c}
        col = spec.org_column
        unknown = pl.col(col).is_not_null() & ~pl.col(col).is_in(list(allowed))
        if spec.org_name_column in mapping:  # an official publication that names it: provisional, not bad data
            unknown = unknown & pl.col(spec.org_name_column).is_null()
            why = ("organisation code '{}' is not in the organisation reference and the row gives it no name, so "
                   "it cannot enter as a provisional organisation")
        else:
            why = ("organisation code '{}' is not in the organisation reference (ODS extracts or "
                   "data/reference/organisations_supplement.csv)")
        problems.append(_problems(typed, unknown, col, mapping[col], "unknown_org", why))
    if "period_start" in typed.columns:
        latest = date(today.year + (today.month == 12), today.month % 12 + 1, 1)
        pc = spec.period_column
        problems.append(_problems(
            typed, (pl.col("period_start") < EARLIEST_PERIOD) | (pl.col("period_start") > latest), pc, mapping[pc],
            "period_out_of_range", f"period '{{}}' is outside {EARLIEST_PERIOD:%Y-%m} to {latest:%Y-%m}"))
    for num, den in spec.ratio_pairs:
        if num in mapping and den in mapping:
            problems.append(_problems(
                typed, pl.col(num) > pl.col(den) + 0.5, num, mapping[num], "numerator_gt_denominator",
                f"{{}} is more than '{mapping[den]}'; a part cannot exceed its whole"))
    return problems


def duplicate_rules(spec: SourceSpec, good: pl.DataFrame, mapping: dict[str, str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Identical duplicate rows: keep the first. Conflicting rows for one key: quarantine them all."""
    key = list(spec.key)
    if good.height == 0 or not good.select(pl.struct(key).is_duplicated().any()).item():
        return good, pl.DataFrame(schema=PROBLEM_SCHEMA)  # the usual case: every key once, checked in one pass
    value_cols = [c for c in good.columns if c != ROW]
    first_of_key = pl.col(ROW).min().over(key)
    n_versions = pl.struct(value_cols).n_unique().over(key)
    flagged = good.with_columns(first_of_key.alias("_first"), n_versions.alias("_versions"))
    exact_dup = (pl.col("_versions") == 1) & (pl.col(ROW) != pl.col("_first"))
    conflict = pl.col("_versions") > 1
    shown = [spec.period_column if k == "period_start" and spec.period_column else k for k in key]
    label = " / ".join(mapping.get(k, k) for k in shown)
    key_text = pl.concat_str([pl.col(k).cast(pl.Utf8).fill_null("") for k in shown], separator=" / ")
    key_shown = _one_line_expr(key_text).str.slice(0, 160)
    dups = flagged.filter(exact_dup).select(
        pl.col(ROW).alias("row_number"), pl.lit(label).alias("column"), key_text.alias("value"),
        pl.lit("duplicate_row").alias("rule"),
        pl.format("row {}: duplicate of row {} (same {} {}); the first is kept", pl.col(ROW), pl.col("_first"),
                  pl.lit(one_line(label)), key_shown).alias("message"))
    conflicts = flagged.filter(conflict).select(
        pl.col(ROW).alias("row_number"), pl.lit(label).alias("column"), key_text.alias("value"),
        pl.lit("conflicting_duplicate").alias("rule"),
        pl.format("row {}: {} {} appears more than once with different values; none of them is loaded",
                  pl.col(ROW), pl.lit(one_line(label)), key_shown).alias("message"))
    keep = flagged.filter(~exact_dup & ~conflict).drop("_first", "_versions")
    return keep, pl.concat([dups, conflicts])


def validate(spec: SourceSpec, table: TextTable, known_orgs: frozenset[str] | None, today: date | None = None) -> Validated:
    """All row rules for one file. Raises FileRefused for file-level failures (missing columns...)."""
    today = today or date.today()
    mapping = map_headers(spec, table.headers)
    plain = _plain_number_columns(spec, table.frame, mapping)
    typed, problems = type_columns(spec, table.frame, mapping, plain)
    typed = add_period(spec, typed)
    problems += row_rules(spec, typed, mapping, known_orgs, today)
    for r in table.ragged:
        problems.append(pl.DataFrame({
            "row_number": [r.row_number], "column": [None], "value": [r.text], "rule": ["wrong_field_count"],
            "message": [f"row {r.row_number}: has {r.fields} fields, the header has {r.expected}"]},
            schema=PROBLEM_SCHEMA))
    problems_df = pl.concat([p.cast(PROBLEM_SCHEMA) for p in problems]) if problems else pl.DataFrame(schema=PROBLEM_SCHEMA)
    bad_rows = problems_df.get_column("row_number").unique()
    good = typed.filter(~pl.col(ROW).is_in(bad_rows.implode()))
    good, dup_problems = duplicate_rules(spec, good, mapping)
    if dup_problems.height:
        problems_df = pl.concat([problems_df, dup_problems.cast(PROBLEM_SCHEMA)])
    rows_read = table.frame.height + len(table.ragged)
    if table.sheet:
        problems_df = _in_sheet(problems_df, table)
    return Validated(good, problems_df.sort("row_number"), rows_read, _provisional(spec, good, known_orgs),
                     _suppressed(spec, table, mapping, plain))


def _in_sheet(problems: pl.DataFrame, table: TextTable) -> pl.DataFrame:
    """A workbook problem names its sheet and cell as a spreadsheet does: `Provider!F17: row 17, ...`."""
    letter = pl.col("column").replace_strict(table.columns, default=None, return_dtype=pl.Utf8)
    cell = pl.when(letter.is_not_null() & pl.col("row_number").is_not_null()).then(
        pl.concat_str([pl.lit(f"{table.sheet}!"), letter, pl.col("row_number").cast(pl.Utf8)])).otherwise(
        pl.lit(f"sheet '{table.sheet}'"))
    return problems.with_columns(pl.concat_str([cell, pl.lit(": "), pl.col("message")]).alias("message"))


def _provisional(spec: SourceSpec, good: pl.DataFrame, known_orgs: frozenset[str] | None) -> dict[str, str]:
    """Codes the reference does not know yet that the publication names: they enter as provisional."""
    if known_orgs is None or not spec.org_column or spec.org_name_column not in good.columns:
        return {}
    allowed = list(known_orgs | ({spec.total_code} if spec.total_code else set()))
    new = good.filter(pl.col(spec.org_column).is_not_null() & ~pl.col(spec.org_column).is_in(allowed))
    pairs = new.group_by(spec.org_column).agg(pl.col(spec.org_name_column).first()).sort(spec.org_column)
    return dict(pairs.iter_rows())


def _suppressed(spec: SourceSpec, table: TextTable, mapping: dict[str, str],
                plain: dict[str, pl.Series]) -> dict[str, int]:
    """How many number cells held a suppression mark ('-', '*', '..'), read as missing: kept for the message.
    Columns of plain numbers hold none, so only the others are looked at."""
    marks = [t for t in spec.null_tokens if t]
    headers = [mapping[c.name] for c in spec.columns
               if c.kind in NUMBER_KINDS and c.name in mapping and c.name not in plain]
    if not headers or table.frame.height == 0:
        return {}
    any_mark = table.frame.select(pl.sum_horizontal([pl.col(h).str.strip_chars().is_in(marks).sum()
                                                     for h in headers])).item()
    if not any_mark:  # the usual case, checked cheaply over every column at once
        return {}
    per_mark = table.frame.select([pl.sum_horizontal([(pl.col(h).str.strip_chars() == m).sum() for h in headers])
                                   .alias(m) for m in marks])
    return {m: int(n) for m, n in per_mark.row(0, named=True).items() if n}


def check_total_row(spec: SourceSpec, good: pl.DataFrame, complete: bool) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """The published TOTAL row must equal the sum of the provider rows, measure by measure.

    A complete file whose TOTAL disagrees is refused (we cannot tell which row is wrong). When some provider
    rows were quarantined the TOTAL cannot be checked, so it is set aside in quarantine, not loaded.
    """
    if spec.total_code is None or spec.org_column is None:
        return good, None
    is_total = pl.col(spec.org_column) == spec.total_code
    totals, providers = good.filter(is_total), good.filter(~is_total)
    if totals.height == 0:
        return good, None
    if not complete:
        header = spec.column(spec.org_column).header
        aside = totals.select(
            pl.col(ROW).alias("row_number"), pl.lit(header).alias("column"),
            pl.lit(spec.total_code).alias("value"), pl.lit("total_not_verifiable").alias("rule"),
            pl.format(f"row {{}}, column '{header}': TOTAL row set aside; provider rows of this file were "
                      "quarantined, so it cannot be checked against their sum", pl.col(ROW)).alias("message"))
        return providers, aside
    diffs = []
    for c in spec.count_columns:
        t, s = totals.get_column(c).sum(), providers.get_column(c).sum()
        if abs((t or 0) - (s or 0)) > 0.5:
            diffs.append(f"{spec.column(c).header}: TOTAL {t:,.0f} vs sum of rows {s:,.0f}")
    if diffs:
        more = f" (and {len(diffs) - 2} more columns)" if len(diffs) > 2 else ""
        raise FileRefused("TOTAL row does not equal the sum of the provider rows: " + "; ".join(diffs[:2]) + more,
                          "total_mismatch")
    return good, None
