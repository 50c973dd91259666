"""Access control: the users file, logins, and what a trust, ICB or admin user can see, by selector and by URL."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from ibp_pipeline import access
from ibp_pipeline.dashboards import board_pack
from ibp_pipeline.dashboards.serving import Serving

from .conftest import page_text

PASSWORD = "correct horse battery staple"


def _users(tmp_path: Path) -> Path:
    path = tmp_path / "users.yaml"
    access.add_user(path, "coo.rxl", "trust", "RXL", PASSWORD, name="COO Blackpool")
    access.add_user(path, "analyst.qe1", "icb", "QE1", PASSWORD)
    access.add_user(path, "admin", "admin", None, PASSWORD)
    return path


def _codes(selectbox) -> set[str]:
    """The ODS codes a selectbox offers (AppTest shows the formatted labels: 'Trust · Name (RXL)')."""
    found = {re.search(r"\(([A-Z0-9-]+)\)$", label).group(1) if label != "England" else "ENGLAND"
             for label in selectbox.options}
    assert len(found) == len(selectbox.options)
    return found


def _login(at, username: str, password: str = PASSWORD):
    at.text_input(key="login_username").input(username)
    at.text_input(key="login_password").input(password)
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def test_users_file_stores_only_hashes_and_checks_passwords(tmp_path):
    path = _users(tmp_path)
    text = path.read_text()
    assert PASSWORD not in text and "$2b$" in text
    users = access.load_users(path)
    assert access.check_login(users, "coo.rxl", PASSWORD).org_code == "RXL"
    assert access.check_login(users, "coo.rxl", "wrong password") is None
    assert access.check_login(users, "nobody", PASSWORD) is None


@pytest.mark.parametrize("entry, message", [
    ("- {username: a.b, role: trust}", "users[0] (a.b): a trust user needs an org_code"),
    ("- {username: a.b, role: boss, org_code: RXL}", "users[0] (a.b).role: must be 'admin', 'icb' or 'trust'"),
    ("- {username: a.b, role: trust, org_code: RXL, colour: red}", "users[0] (a.b).colour: unknown field"),
    ("- {username: a.b, role: trust, org_code: RXL, password_hash: secret}", "users[0] (a.b).password_hash"),
])
def test_users_file_errors_name_the_user_and_field(tmp_path, entry, message):
    path = tmp_path / "users.yaml"
    path.write_text(f"users:\n{entry}\n")
    with pytest.raises(access.UsersFileError) as err:
        access.load_users(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)
    assert "\n" not in str(err.value)


def test_visibility_rule_on_a_small_known_case():
    orgs = pl.DataFrame({"org_code": ["RA1", "RA2", "RB1", "QAA", "QBB"],
                         "org_type": ["nhs_trust"] * 3 + ["icb"] * 2,
                         "parent_icb_code": ["QAA", "QAA", "QBB", None, None]})
    peers = pl.DataFrame({"org_code": ["RA1", "RB1", "RA2"], "peer_group_id": [1, 1, 2]})
    trust = access.User("t", "", "trust", "RA1")
    icb = access.User("i", "", "icb", "QBB")
    assert access.visible_orgs(trust, orgs, peers) == {"RA1", "QAA", "RB1"}  # own, its ICB, its peer
    assert access.visible_orgs(icb, orgs, peers) == {"QBB", "RB1"}
    assert access.visible_orgs(access.User("a", "", "admin", None), orgs, peers) is None
    assert access.visible_orgs(None, orgs, peers) is None


@pytest.fixture(scope="module")
def outsider(served_db) -> tuple[str, str]:
    """A trust outside RXL's ICB and peer group, with published data: what a Blackpool user must never see."""
    db = Serving(served_db)
    row = db.query("""
        select o.org_code, o.org_name from s1_current_state.organisations o
        join s2_triple_aim.peer_groups p using (org_code)
        where o.org_type = 'nhs_trust' and o.parent_icb_code <> 'QE1'
          and p.peer_group_id <> (select peer_group_id from s2_triple_aim.peer_groups where org_code = 'RXL')
        order by o.org_code limit 1""")
    return row["org_code"][0], row["org_name"][0]


def test_login_required_and_trust_user_sees_only_own_trust_icb_and_peers(app, tmp_path, served_db, outsider):
    at = app(users_file=_users(tmp_path))
    assert not at.selectbox and "Log in" in [b.label for b in at.button]  # nothing shown before login
    _login(at, "coo.rxl", "not the password")
    assert "Username or password not recognised." in [e.value for e in at.error] and not at.selectbox
    _login(at, "coo.rxl")
    org = at.selectbox(key="ibp_org")
    assert org.value == "RXL"
    db = Serving(served_db)
    peers = set(db.query("select org_code from s2_triple_aim.peer_groups where peer_group_id = (select "
                         "peer_group_id from s2_triple_aim.peer_groups where org_code = 'RXL')")["org_code"])
    offered = _codes(org)
    # RXL's peer group is now of its own type (acute teaching, 9 trusts), no longer ~80 trusts of any type
    assert offered <= {"RXL", "QE1", *peers} and {"RXL", "QE1"} <= offered and len(offered) >= 5
    assert outsider[0] not in offered and "ENGLAND" not in offered
    with pytest.raises(Exception):  # the selector refuses a code it does not offer
        org.select(outsider[0]).run()


def test_trust_user_cannot_open_another_trust_by_url_on_any_page(app, tmp_path, outsider):
    code, name = outsider
    at = app(users_file=_users(tmp_path), query={"org": code})
    _login(at, "coo.rxl")
    assert any(f"cannot see organisation {code}" in e.value for e in at.error)
    assert at.selectbox(key="ibp_org").value == "RXL"
    for page in ("overview.py", "performance.py", "benchmarking.py", "resources.py", "gaps.py", "forecasts.py",
                 "scenarios.py"):
        at.switch_page(f"app_pages/{page}").run()
        assert not at.exception, (page, at.exception)
        assert at.selectbox(key="ibp_org").value == "RXL"
        assert name.lower() not in page_text(at).lower(), page
        for frame in at.dataframe:
            df = frame.value
            if "org_code" in df.columns:
                assert code not in set(df["org_code"]), page


def test_icb_user_sees_the_icb_and_its_members_admin_sees_all(app, tmp_path, served_db):
    users = _users(tmp_path)
    at = _login(app(users_file=users), "analyst.qe1")
    options = _codes(at.selectbox(key="ibp_org"))
    members = set(Serving(served_db).query("select org_code from s1_current_state.organisations "
                                           "where parent_icb_code = 'QE1'")["org_code"])
    assert "QE1" in options and "RXL" in options and options <= {"QE1", *members}
    at = _login(app(users_file=users), "admin")
    assert {"ENGLAND", "QE1", "RXL", "Y62"} <= _codes(at.selectbox(key="ibp_org"))
    assert not any("Local mode" in m.value for m in at.markdown)


def test_local_mode_shows_the_banner(app):
    at = app()
    assert any("Local mode" in m.value for m in at.markdown)
    assert at.selectbox(key="ibp_org").value == "ENGLAND"


def test_board_pack_refuses_an_organisation_the_user_cannot_see(served_db, outsider):
    db = Serving(served_db)
    months = db.query("select max(period_start) as m from s1_current_state.metric_values")["m"][0]
    with pytest.raises(PermissionError):
        board_pack.build(db, outsider[0], months, months, visible=frozenset({"RXL"}))


def test_ibp_user_add_command(tmp_path):
    path = tmp_path / "users.yaml"
    env = {**os.environ, "IBP_USERS_FILE": str(path), "IBP_NEW_PASSWORD": PASSWORD}
    out = subprocess.run([sys.executable, "-m", "ibp_pipeline.cli", "user", "add", "coo", "--role", "trust",
                          "--org", "rxl"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert access.load_users(path)["coo"].org_code == "RXL"
    short = subprocess.run([sys.executable, "-m", "ibp_pipeline.cli", "user", "add", "x", "--role", "icb"],
                           env=env, capture_output=True, text=True)
    assert short.returncode == 1 and "needs --org" in short.stderr


@pytest.mark.parametrize("hostile", ["RXL' OR 1=1 --", "'; DROP TABLE s1_current_state.organisations; --",
                                     "../../etc/passwd", "<script>alert(1)</script>"])
def test_hostile_address_bar_values_are_refused_not_executed(app, served_db, hostile):
    before = Serving(served_db).query("select count(*) as n from s1_current_state.organisations")["n"][0]
    at = app(query={"org": hostile, "from": hostile, "to": "2025-13"})
    assert any("No organisation with code" in e.value for e in at.error)
    assert at.selectbox(key="ibp_org").value == "ENGLAND"
    assert not any("<script>" in m.value for m in at.markdown)  # echoed only through st.error, as text
    assert Serving(served_db).query("select count(*) as n from s1_current_state.organisations")["n"][0] == before


def test_oidc_configured_requires_sign_in_before_anything_shows(served_db, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from .conftest import APP

    monkeypatch.setenv("IBP_SERVING", str(served_db))
    monkeypatch.setenv("IBP_USERS_FILE", str(tmp_path / "none.yaml"))
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                          "client_id": "ibp", "client_secret": "not-a-secret",
                          "server_metadata_url": "https://login.example.invalid/.well-known/openid-configuration"}
    at.run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Log in"] and not at.selectbox and not at.dataframe
    assert not any("Local mode" in m.value for m in at.markdown)
