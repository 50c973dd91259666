"""Publish the served tables to PostgreSQL, for many concurrent dashboard users on a server.

Why: data/serving.duckdb serves one machine well; a team's dashboards on several machines need a database server.
Every table of the served file (its schemas and tables as they are) is copied into PostgreSQL and swapped in
atomically for readers:

1. each schema `X` is loaded as `X__building` (COPY, streamed from DuckDB in Arrow batches, written as CSV);
2. every table's row count is checked against DuckDB's;
3. ONE transaction locks the old tables, drops the old schemas, renames the new ones into place and records the
   publish in `ibp_publish.publishes`. PostgreSQL DDL is transactional: a query sees the whole old publish or the
   whole new one (it waits a moment on the lock during the swap, never fails). If a reader's query holds an old
   table, the swap gives up its locks after LOCK_TIMEOUT and tries again, so a reader is never a deadlock victim.

Killed at any point, a publish leaves the published tables as they were; the next publish drops the leftover
`__building` schemas. One publisher at a time (a PostgreSQL advisory lock).

The connection string comes from the environment (IBP_SERVING_POSTGRES_URL, a libpq URL) and is never logged
with its password: every message goes through redact_url / scrub. Names are quoted with psycopg.sql.Identifier;
values reach PostgreSQL only through COPY and bound parameters.
"""
from __future__ import annotations

import io
import json
import os
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import unquote, urlsplit, urlunsplit

import duckdb

URL_ENV = "IBP_SERVING_POSTGRES_URL"
META_SCHEMA = "ibp_publish"
BUILDING = "__building"
LOCK_KEY = 7_202_511_23  # pg_advisory_lock key: one publisher at a time
LOCK_TIMEOUT = "300ms"  # the swap waits at most this for readers' locks, then retries (below deadlock_timeout)
SWAP_ATTEMPTS = 200
BATCH_ROWS = 100_000
MAX_IDENTIFIER = 63  # PostgreSQL's NAMEDATALEN - 1, in bytes


class PostgresPublishError(RuntimeError):
    """The publish did not happen; the tables readers see are unchanged. The message never holds a password."""


# ----- pure helpers ---------------------------------------------------------------------------------------------

def redact_url(url: str) -> str:
    """The connection string with any password replaced by ***: safe for logs, metadata and errors."""
    if "://" in url:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
        query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    # key=value form: password='a b' or password=abc
    return re.sub(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", url)


def url_password(url: str) -> str | None:
    """The password a connection string carries (URL userinfo, ?password= or key=value), to scrub it anywhere."""
    if "://" in url:
        parts = urlsplit(url)
        userinfo = parts.netloc.rsplit("@", 1)[0] if "@" in parts.netloc else ""
        if ":" in userinfo:
            return unquote(userinfo.split(":", 1)[1])
        found = re.search(r"(?i)(?:^|&)password=([^&]*)", parts.query)
        return unquote(found.group(1)) if found else None
    found = re.search(r"(?i)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", url)
    return found.group(1).strip("'") if found else None


def scrub(text: str, url: str) -> str:
    """Text with the URL's password (raw and percent-encoded) and the URL itself replaced by redacted forms."""
    out = text.replace(url, redact_url(url))
    password = url_password(url)
    if password:
        from urllib.parse import quote

        for form in {password, quote(password, safe=""), quote(password)}:
            out = out.replace(form, "***")
    return out


def target_of(url: str) -> dict[str, str]:
    """host, port, database and user of a connection string (no password): what logs and metadata may show."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        info = conninfo_to_dict(url)
    except Exception:  # an unparseable string: say nothing about it beyond that
        return {"host": "?", "port": "?", "database": "?", "user": "?"}
    return {"host": str(info.get("host") or os.environ.get("PGHOST") or "localhost"),
            "port": str(info.get("port") or os.environ.get("PGPORT") or "5432"),
            "database": str(info.get("dbname") or os.environ.get("PGDATABASE") or info.get("user") or "?"),
            "user": str(info.get("user") or os.environ.get("PGUSER") or "?")}


_SIMPLE = {
    "BOOLEAN": "boolean", "TINYINT": "smallint", "SMALLINT": "smallint", "UTINYINT": "smallint",
    "INTEGER": "integer", "USMALLINT": "integer", "BIGINT": "bigint", "UINTEGER": "bigint",
    "UBIGINT": "numeric(20,0)", "HUGEINT": "numeric(39,0)", "UHUGEINT": "numeric(39,0)", "BIGNUM": "numeric",
    "VARINT": "numeric", "FLOAT": "real", "DOUBLE": "double precision", "VARCHAR": "text", "DATE": "date",
    "TIME": "time", "TIMESTAMP": "timestamp", "TIMESTAMP_S": "timestamp", "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_NS": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamptz", "TIME WITH TIME ZONE": "timetz",
    "INTERVAL": "interval", "UUID": "uuid", "BLOB": "bytea", "JSON": "jsonb", "BIT": "text",
}
# Types pyarrow's CSV writer renders the way PostgreSQL reads them; others are cast to text in DuckDB first.
_NATIVE = {"BOOLEAN", "TINYINT", "SMALLINT", "UTINYINT", "INTEGER", "USMALLINT", "BIGINT", "UINTEGER", "UBIGINT",
           "FLOAT", "DOUBLE", "VARCHAR", "DATE", "TIMESTAMP"}


def _is_nested(duck_type: str) -> bool:
    t = duck_type.upper()
    return t.endswith("]") or t.startswith(("STRUCT", "MAP", "UNION"))


def pg_type(duck_type: str) -> str:
    """The PostgreSQL column type for a DuckDB type: lists, arrays, structs and maps become jsonb."""
    t = duck_type.strip().upper()
    if _is_nested(t):
        return "jsonb"
    if t in _SIMPLE:
        return _SIMPLE[t]
    found = re.fullmatch(r"(?:DECIMAL|NUMERIC)\((\d+),\s*(\d+)\)", t)
    if found:
        return f"numeric({found.group(1)},{found.group(2)})"
    if t.startswith("VARCHAR"):
        return "text"
    return "text"  # ENUM and anything newer: its text form


def copy_expression(column: str, duck_type: str) -> str:
    """The DuckDB select expression that yields the column in a form PostgreSQL's CSV COPY reads as pg_type."""
    name = '"' + column.replace('"', '""') + '"'
    t = duck_type.strip().upper()
    if _is_nested(t):
        return f"to_json({name})::varchar"
    if t == "BLOB":
        return f"'\\x' || hex({name})"
    if t in _NATIVE or re.fullmatch(r"(?:DECIMAL|NUMERIC)\(\d+,\s*\d+\)", t):
        return name
    return f"{name}::varchar"


def building_name(schema: str) -> str:
    """Where schema X is loaded before the swap; refused if PostgreSQL would truncate it (63-byte names)."""
    name = schema + BUILDING
    if len(name.encode()) > MAX_IDENTIFIER:
        raise PostgresPublishError(f"schema name {schema[:40]!r} is too long for PostgreSQL once suffixed "
                                   f"({len(name.encode())} > {MAX_IDENTIFIER} bytes)")
    return name


def check_schema_name(schema: str) -> None:
    """Names PostgreSQL reserves, and our own bookkeeping schema, are refused rather than overwritten."""
    if schema.startswith("pg_") or schema in ("information_schema", "public", META_SCHEMA) or schema.endswith(BUILDING):
        raise PostgresPublishError(f"the served file has a schema named {schema!r}, which cannot be published "
                                   "to PostgreSQL (reserved name)")
    building_name(schema)


# ----- the served file ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SourceTable:
    schema: str
    table: str
    columns: tuple[tuple[str, str], ...]  # (name, DuckDB type)
    rows: int


def read_source(con: duckdb.DuckDBPyConnection) -> list[SourceTable]:
    """Every base table of the served file, with its columns and row count."""
    tables = con.execute("select schema_name, table_name from duckdb_tables() where database_name = "
                         "current_database() and not temporary order by 1, 2").fetchall()
    out = []
    for schema, table in tables:
        cols = con.execute("select column_name, data_type from duckdb_columns() where database_name = "
                           "current_database() and schema_name = ? and table_name = ? order by column_index",
                           [schema, table]).fetchall()
        rows = con.execute(f"select count(*) from {_duck_name(schema, table)}").fetchone()[0]
        out.append(SourceTable(schema, table, tuple(cols), rows))
    return out


def _duck_name(schema: str, table: str) -> str:
    return ".".join('"' + p.replace('"', '""') + '"' for p in (schema, table))


def source_version(path: Path, con: duckdb.DuckDBPyConnection) -> dict[str, str | None]:
    """Which served file this is: its file version (as serving.Serving.version) and the run that published it."""
    st = os.stat(path)
    run_id = published_at = None
    if con.execute("select count(*) from duckdb_tables() where schema_name = 'meta' and table_name = 'publication'"
                   ).fetchone()[0]:
        row = con.execute("select run_id::varchar, published_at::varchar from meta.publication limit 1").fetchone()
        run_id, published_at = row if row else (None, None)
    return {"file_version": f"{st.st_ino}-{st.st_mtime_ns}-{st.st_size}", "run_id": run_id,
            "served_published_at": published_at}


def _csv_chunks(con: duckdb.DuckDBPyConnection, query: str, options) -> Iterator[bytes]:
    """The query's rows as CSV chunks, rendered in a thread (DuckDB and Arrow release the GIL) while COPY sends."""
    import pyarrow.csv as pacsv

    done = object()
    chunks: queue.Queue = queue.Queue(maxsize=3)
    stop = threading.Event()

    def produce() -> None:
        try:
            rel = con.sql(query)
            reader = rel.to_arrow_reader(BATCH_ROWS) if hasattr(rel, "to_arrow_reader") \
                else rel.fetch_record_batch(BATCH_ROWS)
            for batch in reader:
                if stop.is_set():
                    return
                buf = io.BytesIO()
                pacsv.write_csv(batch, buf, options)
                chunks.put(buf.getvalue())
            chunks.put(done)
        except BaseException as exc:  # handed to the consumer, which raises it
            chunks.put(exc)

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    try:
        while (item := chunks.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # a failed COPY: drain so the producer can finish, then let it go
            try:
                chunks.get(timeout=0.1)
            except queue.Empty:
                pass


# ----- the publish ----------------------------------------------------------------------------------------------

@dataclass
class PublishResult:
    target: dict[str, str]  # host, port, database, user: no password
    tables: int
    rows: int
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)
    publish_id: int = 0


def _connect(url: str):
    import psycopg

    try:
        return psycopg.connect(url, connect_timeout=15, application_name="ibp publish-postgres")
    except Exception as exc:
        t = target_of(url)
        reason = scrub(str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__, url)
        reason = re.sub(r"^connection failed: ", "", reason)
        raise PostgresPublishError(f"cannot connect to PostgreSQL {t['host']}:{t['port']}/{t['database']} as "
                                   f"{t['user']}: {reason}") from None


def _ensure_meta(pg) -> None:
    from psycopg import sql

    pg.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(META_SCHEMA)))
    pg.execute(sql.SQL(
        "create table if not exists {}.publishes (id bigserial primary key, published_at timestamptz not null, "
        "source_file text not null, source_version text not null, source_run_id text, tables integer not null, "
        "rows bigint not null, seconds double precision, schemas text[] not null, table_rows jsonb not null)"
    ).format(sql.Identifier(META_SCHEMA)))


def _load(pg, con: duckdb.DuckDBPyConnection, tables: list[SourceTable], log: Callable[[str], None]) -> None:
    """Create the __building schemas and COPY every table into them, checking each row count."""
    import pyarrow.csv as pacsv
    from psycopg import sql

    schemas = sorted({t.schema for t in tables})
    for schema in schemas:
        with pg.transaction():
            pg.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(building_name(schema))))
            pg.execute(sql.SQL("create schema {}").format(sql.Identifier(building_name(schema))))
    options = pacsv.WriteOptions(include_header=False)
    for t in tables:
        target = sql.Identifier(building_name(t.schema), t.table)
        cols = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(pg_type(ty)))
                                  for c, ty in t.columns)
        query = "select " + ", ".join(copy_expression(c, ty) for c, ty in t.columns) + \
            f" from {_duck_name(t.schema, t.table)}"
        with pg.transaction():
            pg.execute(sql.SQL("create table {} ({})").format(target, cols))
            # FREEZE: the table is new in this transaction, so rows are written frozen (no later rewrite)
            with pg.cursor().copy(sql.SQL("copy {} from stdin (format csv, freeze)").format(target)) as copy:
                for chunk in _csv_chunks(con, query, options):
                    copy.write(chunk)
            got = pg.execute(sql.SQL("select count(*) from {}").format(target)).fetchone()[0]
        if got != t.rows:
            raise PostgresPublishError(f"{t.schema}.{t.table}: {got} rows arrived in PostgreSQL, DuckDB has {t.rows}")
        log(f"copied {t.schema}.{t.table}: {t.rows:,} rows")


def _drop_building(pg, schemas: list[str]) -> None:
    """After a failed load, remove the half-built schemas (best effort: the next publish drops them anyway)."""
    from psycopg import sql

    try:
        pg.rollback()
        pg.autocommit = True
        for schema in schemas:
            pg.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema + BUILDING)))
    except Exception:
        pass


def _swap(pg, schemas: list[str], record: dict) -> int:
    """In one transaction: lock the old tables, drop them, rename the new schemas in, record the publish."""
    import psycopg
    from psycopg import sql

    previous = pg.execute(sql.SQL("select schemas from {}.publishes order by id desc limit 1")
                          .format(sql.Identifier(META_SCHEMA))).fetchone()
    retired = sorted(set(previous[0] if previous else []) - set(schemas))
    for attempt in range(SWAP_ATTEMPTS):
        try:
            with pg.transaction():
                pg.execute(sql.SQL("set local lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
                old = pg.execute("select schemaname, tablename from pg_tables where schemaname = any(%s) "
                                 "order by 1, 2", [schemas + retired]).fetchall()
                if old:
                    pg.execute(sql.SQL("lock table {} in access exclusive mode").format(
                        sql.SQL(", ").join(sql.Identifier(s, t) for s, t in old)))
                for schema in retired:
                    pg.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
                for schema in schemas:
                    pg.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
                    pg.execute(sql.SQL("alter schema {} rename to {}").format(
                        sql.Identifier(building_name(schema)), sql.Identifier(schema)))
                return pg.execute(sql.SQL(
                    "insert into {}.publishes (published_at, source_file, source_version, source_run_id, tables, "
                    "rows, seconds, schemas, table_rows) values (%s, %s, %s, %s, %s, %s, %s, %s, %s) returning id"
                ).format(sql.Identifier(META_SCHEMA)), [
                    record["published_at"], record["source_file"], record["source_version"], record["source_run_id"],
                    record["tables"], record["rows"], record["seconds"], schemas, json.dumps(record["table_rows"])
                ]).fetchone()[0]
        except psycopg.errors.LockNotAvailable:
            time.sleep(min(0.05 * (attempt + 1), 0.5))  # a reader holds an old table: let it finish
    raise PostgresPublishError(f"readers held the published tables through {SWAP_ATTEMPTS} attempts to swap; "
                               "the old publish is still served")


def publish_to_postgres(serving: Path, url: str, log: Callable[[str], None] | None = None) -> PublishResult:
    """Copy every table of the served DuckDB file into PostgreSQL and swap it in atomically for readers."""
    import psycopg

    say = (lambda m: log(scrub(m, url))) if log else (lambda m: None)
    if not url:
        raise PostgresPublishError(f"no PostgreSQL connection string: set {URL_ENV} (a libpq URL)")
    if not serving.exists():
        raise PostgresPublishError(f"{serving} does not exist yet: run `ibp run` to build and publish it")
    started = time.time()
    target = target_of(url)
    con = duckdb.connect(str(serving), read_only=True)
    try:
        tables = read_source(con)
        for t in tables:
            check_schema_name(t.schema)
        version = source_version(serving, con)
        pg = _connect(url)
        try:
            pg.autocommit = True
            pg.execute("select pg_advisory_lock(%s)", [LOCK_KEY])  # one publisher; released when we disconnect
            _ensure_meta(pg)
            say(f"publishing {len(tables)} tables of {serving} to PostgreSQL {target['host']}:{target['port']}/"
                f"{target['database']}")
            schemas = sorted({t.schema for t in tables})
            counts = {f"{t.schema}.{t.table}": t.rows for t in tables}
            try:
                _load(pg, con, tables, say)
                record = {"published_at": datetime.now(timezone.utc), "source_file": str(serving),
                          "source_version": version["file_version"], "source_run_id": version["run_id"],
                          "tables": len(tables), "rows": sum(counts.values()),
                          "seconds": round(time.time() - started, 3), "table_rows": counts}
                publish_id = _swap(pg, schemas, record)
            except BaseException:
                _drop_building(pg, schemas)
                raise
        except psycopg.Error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise PostgresPublishError(f"publishing to PostgreSQL {target['host']}/{target['database']} failed: "
                                       f"{scrub(first, url)} (the previous publish is still served)") from None
        finally:
            pg.close()
    finally:
        con.close()
    result = PublishResult(target, len(tables), sum(counts.values()), round(time.time() - started, 2), counts,
                           publish_id)
    say(f"published {result.tables} tables, {result.rows:,} rows to PostgreSQL {target['host']}/"
        f"{target['database']} in {result.seconds:.1f}s (publish {publish_id})")
    return result
