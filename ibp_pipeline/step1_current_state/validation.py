"""Row-level rules applied to a published file before anything is loaded.

Pure functions over polars frames: a file's text cells go in; typed good rows and a table of problems (row,
column, value, rule, one-line message) come out. A row with any problem is kept out of the warehouse and put
in quarantine instead; every other row still loads. File-level failures raise FileRefused.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
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
    parts = raw.str.to_uppercase().str.extract_groups(r"^MSITAE-([A-Z]+)-(\d{4})$")
    month = parts.struct.field("1").replace_strict(MONTHS, default=None, return_dtype=pl.Int32)
    year = parts.struct.field("2").cast(pl.Int32, strict=False)
    return pl.date(year, month, 1)


def type_columns(spec: SourceSpec, text: pl.DataFrame, mapping: dict[str, str]) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """Cast each column by its kind; cells that do not parse become problems, never silent nulls."""
    problems: list[pl.DataFrame] = []
    cleaned = text.select(
        pl.col(ROW), *[_clean_text(spec, mapping[c.name]).alias(c.name) for c in spec.columns if c.name in mapping])
    exprs = [pl.col(ROW)]
    for col in spec.columns:
        if col.name not in mapping:
            exprs.append(pl.lit(None, dtype=DTYPES[col.kind]).alias(col.name))
            continue
        raw = pl.col(col.name)
        header = mapping[col.name]
        if col.kind in ("number", "count", "fraction"):
            parsed = _parse_number(raw)
            problems.append(_problems(cleaned, raw.is_not_null() & parsed.is_null(), col.name, header,
                                      "not_a_number", "'{}' is not a number"))
            if col.kind == "count":
                problems.append(_problems(cleaned, parsed < 0, col.name, header, "negative_count",
                                          "{} is negative; counts cannot be below zero"))
            exprs.append(parsed.alias(col.name))
        elif col.kind == "date":
            parsed = raw.str.to_date("%Y-%m-%d", strict=False)
            problems.append(_problems(cleaned, raw.is_not_null() & parsed.is_null(), col.name, header,
                                      "not_a_date", "'{}' is not a date (expected YYYY-MM-DD)"))
            exprs.append(parsed.alias(col.name))
        elif col.kind == "ae_period":
            parsed = _parse_ae_period(raw)
            problems.append(_problems(cleaned, raw.is_null() | parsed.is_null(), col.name, header,
                                      "not_a_period", "'{}' is not an A&E period label like MSitAE-APRIL-2024"))
            exprs.append(raw.alias(col.name))
            exprs.append(parsed.alias("_ae_period_date"))
        elif col.kind == "code":
            up = raw.str.to_uppercase()
            problems.append(_problems(cleaned, up.is_not_null() & ~up.str.contains(CODE_PATTERN), col.name, header,
                                      "malformed_code", "'{}' is not a valid code"))
            exprs.append(up.alias(col.name))
        else:
            exprs.append(raw.alias(col.name))
    return cleaned.select(exprs), problems


def add_period(spec: SourceSpec, typed: pl.DataFrame) -> pl.DataFrame:
    """period_start: first day of the month (or quarter) the row describes."""
    if spec.period_column is None:
        return typed
    kind = spec.column(spec.period_column).kind
    src = pl.col("_ae_period_date") if kind == "ae_period" else pl.col(spec.period_column)
    start = src.dt.month_start()
    if spec.period_grain == "quarter":
        start = start.dt.offset_by("-2mo")  # quarter_end -> first day of the quarter
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
        allowed = set(known_orgs) | ({spec.total_code} if spec.total_code else set())
        col = spec.org_column
        problems.append(_problems(
            typed, pl.col(col).is_not_null() & ~pl.col(col).is_in(list(allowed)), col, mapping[col], "unknown_org",
            "organisation code '{}' is not in the organisation reference (ODS extracts or "
            "data/reference/organisations_supplement.csv)"))
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
    typed, problems = type_columns(spec, table.frame, mapping)
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
    return Validated(good, problems_df.sort("row_number"), rows_read)


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
