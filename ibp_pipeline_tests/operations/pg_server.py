"""A throwaway PostgreSQL server for tests: a fresh cluster in a temporary folder, on loopback, stopped after.

Why a real server: publishing and Dagster's storage are only proven against the engine itself. The cluster
runs as the `postgres` system user (PostgreSQL refuses to run as root) with its socket in the temporary folder,
so it never touches a system service. Without the server binaries (a laptop without PostgreSQL) the tests
that need it skip, saying why; `.ci/run` installs them so CI runs them for real.
"""
from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

import pytest


def find_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb and pg_ctl (Debian's layout), or PATH's."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgServer:
    """A running cluster: superuser `postgres` over the socket, and a password role for the code under test."""
    bin_dir: Path
    root: Path
    port: int
    socket_dir: Path
    user: str
    password: str

    def url(self, db: str = "ibp", password: str | None = None, user: str | None = None) -> str:
        """A libpq URL over TCP with a password, as a team's configuration would give it."""
        pw = self.password if password is None else password
        return f"postgresql://{quote(user or self.user)}:{quote(pw, safe='')}@127.0.0.1:{self.port}/{db}"

    def admin(self, sql: str, db: str = "postgres") -> str:
        """Run SQL as the cluster's superuser over the private socket (setup only, never with test input)."""
        out = subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin_dir / "psql"), "-X", "-q", "-A", "-t",
                              "-h", str(self.socket_dir), "-p", str(self.port), "-d", db, "-v", "ON_ERROR_STOP=1",
                              "-c", sql], capture_output=True, text=True, timeout=60)
        if out.returncode:
            raise RuntimeError(f"psql failed: {out.stderr.strip()}")
        return out.stdout.strip()

    def create_database(self, name: str) -> None:
        self.admin(f'create database "{name}" owner "{self.user}"')


def _as_postgres(args: list[str], **kw) -> subprocess.CompletedProcess:
    cmd = ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def start_server(bin_dir: Path, root: Path) -> PgServer:
    """initdb + pg_ctl start on a free loopback port; the test role gets a random password (from the env if set)."""
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("PostgreSQL tests need the `postgres` system user to run the server as (we are root)")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    root.chmod(0o755)
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        os.chown(sock, pw.pw_uid, pw.pw_gid)
    out = _as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                        "--locale=C", "--no-sync"], timeout=120)
    if out.returncode:
        raise RuntimeError(f"initdb failed: {out.stderr.strip()[-500:]}")
    # Local socket: trust (setup as superuser). TCP: passwords only, so a wrong password is really refused.
    (data / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
    port = _free_port()
    # A throwaway cluster: no durability settings (fsync, WAL) worth paying for.
    opts = (f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={sock} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c wal_level=minimal -c max_wal_senders=0 "
            "-c max_connections=60 -c shared_buffers=64MB")
    out = _as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-o", opts,
                        "-w", "-t", "60", "start"], timeout=90)
    if out.returncode:
        log = (root / "server.log").read_text()[-800:] if (root / "server.log").exists() else ""
        raise RuntimeError(f"pg_ctl start failed: {out.stderr.strip()[-400:]} {log}")
    password = os.environ.get("IBP_TEST_PG_PASSWORD") or f"test-{secrets.token_hex(12)}"
    server = PgServer(bin_dir, root, port, sock, "ibp_test", password)
    server.admin(f"create role ibp_test login password '{password}'")  # generated above: no quotes inside
    server.create_database("ibp")
    return server


def stop_server(server: PgServer) -> None:
    _as_postgres([str(server.bin_dir / "pg_ctl"), "-D", str(server.root / "data"), "-m", "fast", "-w", "stop"],
                 timeout=60)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server for the session, or a skip naming what is missing."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: install the `postgresql` package "
                    "(.ci/run does) to run the PostgreSQL tests")
    # Not under pytest's temporary tree: pytest keeps /tmp/pytest-of-<user> private (0700, re-tightened by each
    # xdist worker), and the postgres user must reach its data and socket directories.
    root = Path(tempfile.mkdtemp(prefix="ibp-pg-"))
    server = start_server(bin_dir, root)
    deadline = time.time() + 10
    while True:  # pg_ctl -w waited for readiness; one TCP probe makes a misconfiguration fail here, clearly
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            break
        except OSError:
            if time.time() > deadline:
                stop_server(server)
                raise
            time.sleep(0.1)
    try:
        yield server
    finally:
        stop_server(server)
        shutil.rmtree(root, ignore_errors=True)


CONSISTENCY_QUERY = """
select (select run_id from meta.publication),
       (select count(*) from s1_current_state.metric_values),
       (select sum(value) from s1_current_state.metric_values),
       (select count(*) from s2_triple_aim.scores),
       (select source_run_id from ibp_publish.publishes order by id desc limit 1),
       pg_sleep(%s)
"""


def consistency_reader(url: str, stop, out_path: str) -> None:
    """A dashboard user in another process: one query over three published tables and the publish record, in a
    loop, half on a kept connection and half on fresh ones; writes every result or error (JSON) to out_path."""
    import json

    import psycopg

    results: list = []
    kept = psycopg.connect(url, autocommit=True)
    i = 0
    while not stop.is_set():
        i += 1
        try:
            if i % 2:
                row = kept.execute(CONSISTENCY_QUERY, [0.03 if i % 3 == 0 else 0]).fetchone()
            else:
                with psycopg.connect(url, autocommit=True) as fresh:
                    row = fresh.execute(CONSISTENCY_QUERY, [0]).fetchone()
            results.append({"ok": [row[0], row[1], float(row[2]), row[3], row[4]]})
        except Exception as exc:  # every failure is a finding: the test asserts there are none
            results.append({"error": f"{type(exc).__name__}: {exc}"})
            try:
                kept.close()
                kept = psycopg.connect(url, autocommit=True)
            except Exception:
                pass
    kept.close()
    Path(out_path).write_text(json.dumps(results))
