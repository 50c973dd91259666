"""Who may plan for which organisation: narrower than who may see it (a trust user sees its peers, but plans for
its own trust only), checked on a hand-made organisations table and a real users file."""
from __future__ import annotations

import duckdb
import pytest

from ibp_pipeline.access import add_user
from ibp_pipeline.plan.loading import access_problem


@pytest.fixture
def con(tmp_path, monkeypatch):
    users = tmp_path / "users.yaml"
    monkeypatch.setenv("IBP_USERS_FILE", str(users))
    add_user(users, "trust_rxl", "trust", "RXL", "a long enough password")
    add_user(users, "icb_qe1", "icb", "QE1", "a long enough password")
    add_user(users, "admin", "admin", None, "a long enough password")
    c = duckdb.connect()
    c.execute("create schema s1_current_state; create schema s2_triple_aim")
    c.execute("create table s1_current_state.organisations as select * from (values ('RXL', 'nhs_trust', 'QE1'), "
              "('RXN', 'nhs_trust', 'QE1'), ('RRK', 'nhs_trust', 'QHL'), ('QE1', 'icb', null)) "
              "t(org_code, org_type, parent_icb_code)")
    c.execute("create table s2_triple_aim.peer_groups as select * from (values ('RXL', 1), ('RRK', 1)) "
              "t(org_code, peer_group_id)")  # RRK is RXL's peer: visible on the dashboards, not plannable
    yield c
    c.close()


@pytest.mark.parametrize("who, org, allowed", [
    ("trust_rxl", "RXL", True), ("trust_rxl", "RRK", False), ("trust_rxl", "QE1", False),
    ("icb_qe1", "QE1", True), ("icb_qe1", "RXN", True), ("icb_qe1", "RRK", False),
    ("admin", "RRK", True), ("nobody", "RXL", False)])
def test_who_may_plan_for_which_organisation(con, who, org, allowed):
    problem = access_problem(con, who, org)
    assert (problem is None) == allowed, problem
    if who == "nobody":
        assert "nobody is not a user" in problem
