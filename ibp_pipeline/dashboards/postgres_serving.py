"""The dashboards reading their served tables from PostgreSQL, for many concurrent readers.

With IBP_SERVING_POSTGRES_URL set, every publish also copies the served tables into PostgreSQL
(operations/postgres_publish.py). With IBP_DASHBOARD_SOURCE=postgres as well, the dashboards read there instead of
data/serving.duckdb: PostgreSQL serves many sessions at once, and the dashboards need not run beside the pipeline.

The pages' SQL is written once, for DuckDB. Each statement is translated once (cached) with sqlglot, a maintained
SQL transpiler (it rewrites QUALIFY, DuckDB's float division, strftime, percentiles, placeholders), plus what it
leaves to us:
- any_value(x) -> (array_agg(x) filter (where x is not null))[1]: PostgreSQL 15 has no any_value (16 does), and
  this form keeps DuckDB's "a non-null value of the group" for every type;
- isnan(x) -> (x = 'NaN'::float8);
- placeholders: `?` -> %s and `$name` -> %(name)s, with every literal % doubled for psycopg.
Parameters stay bound (never formatted into the text). Each query opens a read-only connection
(default_transaction_read_only), so a page can never write, and one statement sees one snapshot: a publish swaps
schemas in one transaction, so a query reads the old tables or the new ones, whole.

Results come back as polars frames typed from PostgreSQL's column types (numeric as Float64, jsonb lists as
lists), like the DuckDB reader's.
"""
from __future__ import annotations

import datetime as dt
import functools
import time
from dataclasses import dataclass
from typing import Any, Sequence

import polars as pl

from ibp_pipeline import settings

from .serving_errors import ServingUnavailable

URL_ENV = "IBP_SERVING_POSTGRES_URL"
SOURCE_ENV = "IBP_DASHBOARD_SOURCE"
LOCATOR = "postgres"  # the reader's identity in the dashboards' cache keys (never the URL: it holds a password)
CONNECT_TIMEOUT_S = 10
VERSION_TTL_S = 5.0  # a new publish reaches the pages within this many seconds
_versions: dict[str, tuple[float, str]] = {}  # url -> (when read, latest publish)

# PostgreSQL type oids -> polars types (others: inferred from the values)
_TYPES = {16: pl.Boolean, 20: pl.Int64, 21: pl.Int64, 23: pl.Int64, 700: pl.Float64, 701: pl.Float64,
          1700: pl.Float64, 25: pl.String, 1043: pl.String, 19: pl.String, 1082: pl.Date,
          1114: pl.Datetime("us"), 1184: pl.Datetime("us", "UTC")}


class PostgresServingError(RuntimeError):
    """The PostgreSQL served copy cannot be read (said in one line, without the password)."""


@functools.lru_cache(maxsize=4096)
def to_postgres(sql: str) -> str:
    """One DuckDB statement as PostgreSQL for psycopg (see the module doc for what is rewritten)."""
    import sqlglot
    from sqlglot import exp

    names: list[str] = []

    def any_value(node: exp.Expression) -> exp.AnyValue | None:
        if isinstance(node, exp.IgnoreNulls):
            node = node.this
        return node if isinstance(node, exp.AnyValue) else None

    def first_non_null(arg: exp.Expression, condition: exp.Expression | None) -> exp.Expression:
        keep: exp.Expression = exp.Not(this=exp.Is(this=arg.copy(), expression=exp.Null()))
        if condition is not None:
            keep = exp.and_(keep, exp.Paren(this=condition.copy()))
        agg = exp.Filter(this=exp.ArrayAgg(this=arg.copy()), expression=exp.Where(this=keep))
        # sqlglot keeps indexes 0-based inside and writes PostgreSQL's 1-based [1]
        return exp.Bracket(this=exp.Paren(this=agg), expressions=[exp.Literal.number(0)])

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Filter) and any_value(node.this) is not None:  # any_value(x) filter (where c)
            return first_non_null(any_value(node.this).this, node.expression.this)  # type: ignore[union-attr]
        if any_value(node) is not None:
            return first_non_null(any_value(node).this, None)  # type: ignore[union-attr]
        if isinstance(node, exp.IsNan):
            return exp.Paren(this=exp.EQ(this=node.this.copy(),
                                         expression=exp.cast(exp.Literal.string("NaN"), "double")))
        if isinstance(node, exp.Placeholder):
            names.append("" if node.name in ("", "?") else node.name)
            return exp.var(f"ibpparam{len(names) - 1}x")
        return node

    tree = sqlglot.parse_one(sql, read="duckdb").transform(rewrite)
    text = tree.sql(dialect="postgres").replace("%", "%%")
    # last first, so ibpparam1x is not found inside ibpparam10x
    for i in reversed(range(len(names))):
        text = text.replace(f"ibpparam{i}x", f"%({names[i]})s" if names[i] else "%s")
    return text


@dataclass(frozen=True)
class PostgresServing:
    """The served tables in PostgreSQL, with the DuckDB reader's interface (query, has_table, version)."""
    url: str

    @property
    def locator(self) -> str:
        return LOCATOR

    @property
    def label(self) -> str:
        """Where the figures were read, for a reader: the database, never the URL's credentials."""
        from psycopg.conninfo import conninfo_to_dict

        try:
            name = conninfo_to_dict(self.url).get("dbname") or "the served database"
        except Exception:  # noqa: BLE001 - a label only
            name = "the served database"
        return f"PostgreSQL database {name} (published copy of serving.duckdb)"

    @staticmethod
    def from_env() -> "PostgresServing":

        url = settings.get(URL_ENV, "")
        if not url:
            raise ServingUnavailable(f"{SOURCE_ENV}=postgres needs {URL_ENV} (a libpq URL of the database "
                                     "`ibp publish-postgres` fills)")
        return PostgresServing(url)

    def _connect(self):
        import psycopg

        from ..operations.postgres_publish import scrub

        try:
            return psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_S,
                                   options="-c default_transaction_read_only=on")
        except psycopg.Error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ServingUnavailable(f"cannot read the served tables in PostgreSQL: {scrub(first, self.url)}") \
                from None

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
        """Run one read-only statement (translated from DuckDB's SQL) with bound parameters."""
        text = to_postgres(sql)
        with self._connect() as con:
            # always bound (even empty), so psycopg turns every doubled %% back into one %
            cur = con.execute(text, params or ())
            columns = [d.name for d in cur.description or []]
            types = [_TYPES.get(d.type_code) for d in cur.description or []]
            rows = cur.fetchall()
        return frame_of(columns, types, rows)

    def has_table(self, schema: str, table: str) -> bool:
        return bool(self.query("select count(*) as n from information_schema.tables where table_schema = ? "
                               "and table_name = ?", [schema, table])["n"][0])

    def version(self) -> str:
        """The latest publish's id and time: changes whenever a new copy is swapped in. Remembered for
        VERSION_TTL_S per process, so a page's dozen cached queries cost one round trip, not a dozen."""
        now = time.monotonic()
        known = _versions.get(self.url)
        if known is not None and now - known[0] < VERSION_TTL_S:
            return known[1]
        value = self._latest_publish()
        _versions[self.url] = (now, value)
        return value

    def _latest_publish(self) -> str:
        try:
            row = self.query("select max(id) as id, max(published_at) as at from ibp_publish.publishes")
        except Exception as exc:  # noqa: BLE001 - no publish yet: one readable line
    
            if isinstance(exc, ServingUnavailable):
                raise
            raise ServingUnavailable("no served tables in PostgreSQL yet: run `ibp publish-postgres` (or `ibp run` "
                                     f"with {URL_ENV} set)") from None
        if row["id"][0] is None:
            raise ServingUnavailable("no served tables in PostgreSQL yet: run `ibp publish-postgres`")
        return f"pg-{row['id'][0]}-{row['at'][0]}"


def frame_of(columns: list[str], types: list, rows: list[tuple]) -> pl.DataFrame:
    """Rows from psycopg as a frame: known types from the column types, numerics (Decimal) as floats."""
    data = {c: [r[i] for r in rows] for i, c in enumerate(columns)}
    series = []
    for c, t in zip(columns, types):
        values = data[c]
        if t is pl.Float64:
            values = [None if v is None else float(v) for v in values]
        if isinstance(t, pl.Datetime) and t.time_zone:
            values = [None if v is None else v.astimezone(dt.timezone.utc) for v in values]
        series.append(pl.Series(c, values, dtype=t, strict=False) if t is not None else pl.Series(c, values))
    return pl.DataFrame(series)
