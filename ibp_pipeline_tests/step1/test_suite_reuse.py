"""A GX suite is run again only when what it would see changed: same rows and same suite -> the earlier passing
verdict is recorded again (a new month re-checks only the sources it touched); any change -> a real run."""
from __future__ import annotations

from pathlib import Path

import pytest

from ibp_pipeline.step1_current_state.checks import validate_source

from .test_ingest_bad_inputs import AE, AE_HEADER, AE_ORGS, csv_text, good_ae, make_env


@pytest.fixture
def env(tmp_path: Path):
    e = make_env(tmp_path / "data")
    e.con.execute("create schema if not exists latest")
    e.con.execute("create table latest.organisations_supplement as select unnest(?) as org_code", [sorted(AE_ORGS)])
    assert e.write_and_load("Monthly-AE-April-2024.csv", csv_text(AE_HEADER, good_ae())).status == "loaded"
    yield e
    e.con.close()


def _results(env, run_id: str) -> list[tuple]:
    return env.con.execute("select check_name, expectation, passed, blocking, failing_rows, details, rows_validated "
                           "from dq.check_results where run_id = ? order by all", [run_id]).fetchall()


def test_unchanged_rows_reuse_the_verdict_and_any_change_runs_the_suite(env):
    first = validate_source(env.con, AE, "run-1", None)
    assert first.success and first.reused_from is None and first.rows_validated == 16

    second = validate_source(env.con, AE, "run-2", None)
    assert second.reused_from == "run-1" and second.success
    assert _results(env, "run-2") == _results(env, "run-1")  # the same verdict, recorded for this run

    # a row changed behind the loader's back: the suite runs again, and catches it
    env.con.execute("update raw.ae_monthly_official set ae_attendances_type_1 = -5 where org_code = ?",
                    [sorted(AE_ORGS)[0]])
    third = validate_source(env.con, AE, "run-3", None)
    assert third.reused_from is None and not third.success
    assert any(not o.passed and o.check.startswith("non_negative") for o in third.outcomes)

    # a failing verdict is never reused, and reuse can be turned off
    fourth = validate_source(env.con, AE, "run-4", None)
    assert fourth.reused_from is None and not fourth.success
    env.con.execute("update raw.ae_monthly_official set ae_attendances_type_1 = 5 where ae_attendances_type_1 = -5")
    assert validate_source(env.con, AE, "run-5", None, reuse=False).reused_from is None


def test_a_new_reference_code_changes_the_suite_and_runs_it(env):
    assert validate_source(env.con, AE, "run-1", None).reused_from is None
    env.con.execute("insert into latest.organisations_supplement values ('ZZZ')")  # not in this source's rows
    assert validate_source(env.con, AE, "run-2", None).reused_from == "run-1"  # suite only holds matching codes
    gone = sorted(AE_ORGS)[0]
    env.con.execute("delete from latest.organisations_supplement where org_code = ?", [gone])
    # the official file names it: a provisional organisation, so the suite (and its verdict) stays the same
    assert validate_source(env.con, AE, "run-3", None).reused_from is not None
    env.con.execute("update raw.ae_monthly_official set org_name = null where org_code = ?", [gone])
    again = validate_source(env.con, AE, "run-4", None)
    assert again.reused_from is None and not again.success  # no name and unknown to the reference: it fails
