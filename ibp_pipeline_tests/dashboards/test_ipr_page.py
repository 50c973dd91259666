"""The Integrated Performance Report: the summary of every measure, the exceptions with the narrative and actions
the organisation keeps, and the risk register beside the simulated chance of missing each standard."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import pytest

from ibp_pipeline.access import User
from ibp_pipeline.dashboards import ipr
from ibp_pipeline.dashboards.formatting import fmt_chance
from ibp_pipeline.records import store

from .conftest import page_text


# ---- the maths and words, with known answers --------------------------------------------------------------------

def test_risk_level_on_the_nhs_five_by_five_matrix() -> None:
    assert [store.risk_level(i, l) for i, l in ((1, 3), (2, 3), (2, 4), (3, 4), (3, 5), (5, 5))] == [
        (3, "low"), (6, "moderate"), (8, "high"), (12, "high"), (15, "extreme"), (25, "extreme")]


def test_exception_reasons_and_which_rows_are_exceptions() -> None:
    rows = pl.DataFrame({"metric_id": ["a", "b", "c", "d"], "unit": ["percent"] * 4,
                         "point_type": ["special_cause_concern", "common_cause", "special_cause_improvement",
                                        "special_cause_concern"],
                         "assurance_type": [None, "consistent_fail", "inconsistent", "consistent_fail"],
                         "target_value": [None, 78.0, 78.0, 95.0]})
    found = ipr.exceptions(rows)
    assert found["metric_id"].to_list() == ["a", "b", "d"]
    assert "consistently miss its target of 78.0%" in found["reason"][1]
    assert "special-cause concern" in found["reason"][2] and "95.0%" in found["reason"][2]


def test_the_register_lists_uncovered_standards_after_the_entered_risks() -> None:
    simulated = pl.DataFrame({"standard_id": ["s1", "s2"], "standard_name": ["A&E 78%", "RTT 65%"],
                              "p_miss": [0.44, 0.9]})
    entered = pl.DataFrame({"risk_id": ["R001", "R002"], "title": ["Winter pressure", "Closed one"],
                            "standard_id": ["s1", None], "owner": ["COO", "CFO"], "impact": [4, 5],
                            "likelihood": [4, 5], "controls": ["Escalation plan", "x"],
                            "status": ["open", "closed"]})
    reg = ipr.risk_register(simulated, entered)
    assert reg["Risk"].to_list() == ["Winter pressure", "Closed one", "No risk entered yet"]   # open first
    assert reg.row(0, named=True)["Score"] == "16 (extreme)" and reg.row(0, named=True)["Standard"] == "A&E 78%"
    assert reg["Simulated chance of missing"].to_list() == ["44%", "-", "90%"]
    assert reg.row(2, named=True)["Standard"] == "RTT 65%"


def test_sections_leave_out_the_staff_group_breakdowns_and_the_sparkline_draws() -> None:
    assert ipr.section_of("ae_4hr_pct") == "Urgent and emergency care"
    assert ipr.section_of("workforce_fte") == "Workforce" and ipr.section_of("workforce_fte_midwives") is None
    svg = ipr.sparkline_svg([1.0, None, 3.0, 2.0])
    assert svg.startswith("<svg") and svg.count(",") == 3 and ipr.sparkline_svg([1.0]) == ""


def test_who_may_enter_reports() -> None:
    trust = User("t", "", "trust", "RXL", None, None)
    icb = User("i", "", "icb", "QE1", None, None)
    assert ipr.may_enter(None, "RXL", None) and ipr.may_enter(trust, "RXL", frozenset({"RXL", "RBT"}))
    assert not ipr.may_enter(trust, "RBT", frozenset({"RXL", "RBT"}))          # a peer: read only
    assert ipr.may_enter(icb, "RXL", frozenset({"QE1", "RXL"})) and not ipr.may_enter(icb, "R0A", frozenset({"QE1"}))


# ---- the store: every revision kept, bad entries refused in words -----------------------------------------------

def test_store_keeps_every_revision_and_refuses_bad_entries(tmp_path: Path) -> None:
    path = tmp_path / "records.duckdb"
    report = store.ExceptionReport("RXL", "ae_4hr_pct", "Winter demand", "Open the SDEC unit", "COO",
                                   dt.date.today() + dt.timedelta(days=60))
    assert store.save_exception(path, report, "ana") == 1
    assert store.save_exception(path, report.__class__(**{**report.__dict__, "actions": "Two actions"}), "ana") == 2
    latest = store.latest_exceptions(path, ["RXL"])
    assert latest.height == 1 and latest["actions"][0] == "Two actions" and latest["revision"][0] == 2
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("select count(*) from ipr.exception_reports").fetchone()[0] == 2   # nothing overwritten
    con.close()
    with pytest.raises(ValueError) as e:
        store.save_exception(path, store.ExceptionReport("RXL", "x", " ", "", "COO", dt.date(2020, 1, 1)), "ana")
    lines = str(e.value).splitlines()
    assert lines[0].startswith("Narrative is empty") and lines[1].startswith("Actions is empty")
    assert "more than a year ago" in lines[2]
    with pytest.raises(ValueError, match="Impact must be a whole number from 1 to 5"):
        store.save_risk(path, store.Risk("RXL", "R001", "t", None, "o", 6, 2, "c"), "ana")
    assert store.latest_risks(path, ["RXL"]).is_empty()


# ---- the page, over the published database ----------------------------------------------------------------------

def _expected_summary(served_db: Path, org: str, to: dt.date) -> dict[str, tuple]:
    """Straight from the served SPC tables: each measure's latest point up to `to` (in the last 24 months)."""
    con = duckdb.connect(str(served_db), read_only=True)
    rows = con.execute("""
        select s.metric_id, s.value, s.point_type, ss.assurance_type from s2_triple_aim.spc s
        join s2_triple_aim.spc_summary ss using (org_code, metric_id)
        where s.org_code = ? and s.period_start <= ? and s.period_start >= ? - interval 24 month
          and s.metric_id not like 'workforce_fte_%'
        qualify row_number() over (partition by s.metric_id order by s.period_start desc) = 1""",
                       [org, to, to]).fetchall()
    con.close()
    return {m: (v, p, a) for m, v, p, a in rows}


def test_trust_report_summary_exceptions_saved_and_risk_register(app, served_db: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    records = tmp_path / "records.duckdb"
    monkeypatch.setenv("IBP_RECORDS_STORE", str(records))
    at = app(page="ipr.py", org="RXL")
    sel = at.session_state["ibp_selection"]
    expected = _expected_summary(served_db, "RXL", sel.period_to)
    shown = pl.from_pandas(at.dataframe[0].value)
    assert shown.height == len(expected) >= 10
    assert "Performance report" in [t.value for t in at.title]
    # every exception the tables imply has its own section, and nothing else has
    concern = {m for m, (_, p, a) in expected.items() if p == "special_cause_concern" or a == "consistent_fail"}
    labels = [e.label for e in at.expander]
    names = dict(duckdb.connect(str(served_db), read_only=True).execute(
        "select metric_id, name from s1_current_state.metric_catalogue").fetchall())
    assert {names[m] for m in concern} == {lab.split(":")[0] for lab in labels if lab.split(":")[0] in
                                            set(names.values())}
    assert concern and "No exception report yet" in page_text(at)
    # the organisation writes its report: kept in the records store and shown at once
    first = sorted(concern, key=lambda m: labels.index(next(lab for lab in labels if lab.startswith(names[m]))))[0]
    form = at.text_area
    form[0].input("Ambulance handovers delayed by bed occupancy over 95%")
    form[1].input("Open 12 escalation beds; daily discharge huddle")
    at.text_input[0].input("Chief Operating Officer")
    at.button[0].click().run()
    assert not at.exception
    kept = store.latest_exceptions(records, ["RXL"])
    assert kept.row(0, named=True)["metric_id"] == first and kept["owner"][0] == "Chief Operating Officer"
    assert "Open 12 escalation beds; daily discharge huddle" in page_text(at)
    # a risk against a simulated standard sits beside its chance of missing
    register = pl.from_pandas(at.dataframe[1].value)
    assert set(register["Risk"]) == {"No risk entered yet"}
    con = duckdb.connect(str(served_db), read_only=True)
    p_miss = con.execute("select 1 - prob_meet_target from s5_impact.risk_register where org_code = 'RXL' "
                         "order by assessed_period, standard_name limit 1").fetchone()[0]
    con.close()
    risk_form = [i for i, b in enumerate(at.button) if b.label == "Save risk"][0]
    title = [t for t in at.text_input if t.label == "Title"][0]
    title.input("Winter demand beyond plan")
    [t for t in at.text_input if t.label == "Owner"][-1].input("Director of Operations")
    [t for t in at.text_area if t.label == "Controls in place"][0].input("Winter plan; escalation beds")
    std = [s for s in at.selectbox if s.label == "Standard it threatens"][0]
    std.select_index(1)
    at.button[risk_form].click().run()
    assert not at.exception
    register = pl.from_pandas(at.dataframe[1].value)
    row = register.row(0, named=True)
    assert row["Risk"] == "Winter demand beyond plan" and row["Score"] == "9 (high)"
    assert row["Simulated chance of missing"] == fmt_chance(p_miss)
    # a second look at the page (a new session) still shows what was kept
    again = app(page="ipr.py", org="RXL")
    assert "Open 12 escalation beds; daily discharge huddle" in page_text(again)


def test_icb_report_runs(app) -> None:
    at = app(page="ipr.py", org="QE1")
    assert not at.exception and at.dataframe


# ---- the board pack, from the command line, with the dashboards' access rules -----------------------------------

def test_board_pack_command_for_a_trust_and_an_icb_with_access_rules(served_db: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture) -> None:
    from ibp_pipeline import cli
    from ibp_pipeline.access import add_user

    records = tmp_path / "records.duckdb"
    monkeypatch.setenv("IBP_SERVING", str(served_db))
    monkeypatch.setenv("IBP_RECORDS_STORE", str(records))
    monkeypatch.setenv("IBP_USERS_FILE", str(tmp_path / "none.yaml"))       # local mode: no users
    con = duckdb.connect(str(served_db), read_only=True)
    concern = con.execute("""select metric_id from s2_triple_aim.spc_summary where org_code = 'RXL'
                             and variation_type = 'special_cause_concern' and metric_id = 'ae_4hr_pct'""").fetchall()
    trusts = {r[0] for r in con.execute("""
        select distinct o.org_code from s1_current_state.organisations o
        join s2_triple_aim.spc_summary s on s.org_code = o.org_code and s.metric_id not like 'workforce_fte_%'
        where o.parent_icb_code = 'QE1' and o.org_type = 'nhs_trust' and o.close_date is null""").fetchall()}
    small_icb, n_members = con.execute("""                          -- the smallest system, to keep --all quick
        select o.parent_icb_code, count(*) from s1_current_state.organisations o
        join s1_current_state.organisations i on i.org_code = o.parent_icb_code and i.valid_to is null
        where o.close_date is null and o.org_code in (select org_code from s1_current_state.metric_values)
        group by 1 having count(*) >= 2 order by 2, 1 limit 1""").fetchone()
    members = {r[0] for r in con.execute("""
        select o.org_code from s1_current_state.organisations o
        where o.parent_icb_code = ? and o.close_date is null
          and o.org_code in (select org_code from s1_current_state.metric_values)""", [small_icb]).fetchall()}
    outsider = con.execute("""
        select p.org_code from s2_triple_aim.peer_groups p join s1_current_state.organisations o using (org_code)
        where p.peer_group_id <> (select peer_group_id from s2_triple_aim.peer_groups where org_code = 'RXL')
          and o.close_date is null and o.org_code in (select org_code from s2_triple_aim.spc_summary)
        order by 1 limit 1""").fetchone()[0]                       # not RXL's peer, not its ICB
    con.close()
    if concern:
        store.save_exception(records, store.ExceptionReport("RXL", "ae_4hr_pct", "Handover delays at the front "
                                                            "door", "Open the SDEC unit", "Chief Operating Officer",
                                                            dt.date.today() + dt.timedelta(days=90)), "tester")
    out = tmp_path / "pack.html"
    assert cli.main(["board-pack", "--org", "rxl", "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    for heading in ("Integrated Performance Report", "Every measure", "Exceptions (", "Risk register",
                    "Forecasts: where each standard is heading", "Scenarios against the baseline", "The plan"):
        assert heading in page, heading
    assert "@page { size: A4 portrait" in page and "plotly" in page          # prints to A4, opens offline
    if concern:
        assert "Handover delays at the front door" in page and "Chief Operating Officer" in page
    # an ICB's pack summarises its trusts
    icb = tmp_path / "icb.html"
    assert cli.main(["board-pack", "--org", "QE1", "--out", str(icb)]) == 0
    icb_page = icb.read_text(encoding="utf-8")
    assert "The system&#x27;s trusts" in icb_page or "The system's trusts" in icb_page
    assert trusts and all(f"<td>{code}</td>" in icb_page for code in trusts)
    # with users configured: --as is required, and a trust user cannot have another trust's pack
    users = tmp_path / "users.yaml"
    add_user(users, "blackpool", "trust", "RXL", "a-long-password")
    add_user(users, "system", "icb", small_icb, "a-long-password")
    monkeypatch.setenv("IBP_USERS_FILE", str(users))
    capsys.readouterr()
    assert cli.main(["board-pack", "--org", "RXL", "--out", str(tmp_path / "x.html")]) == 1
    assert "--as USERNAME" in capsys.readouterr().err
    assert cli.main(["board-pack", "--org", outsider, "--as", "blackpool", "--out", str(tmp_path / "y.html")]) == 1
    assert f"refused: organisation {outsider} is not visible to this user" in capsys.readouterr().err
    assert not (tmp_path / "y.html").exists()
    # --all: every organisation the ICB user may see, one shared plotly.min.js beside them
    folder = tmp_path / "packs"
    assert cli.main(["board-pack", "--all", "--as", "system", "--out", str(folder)]) == 0
    written = sorted(p.name.split("-")[2].upper() for p in folder.glob("board-pack-*.html"))
    assert set(written) == {small_icb} | members and len(members) == n_members
    assert (folder / "plotly.min.js").exists()
    assert all(p.stat().st_size < 2_000_000 for p in folder.glob("*.html"))


def test_board_pack_gap_words() -> None:
    from ibp_pipeline.dashboards.board_pack import gap_text
    assert [gap_text(g, u) for g, u in ((0.7, "percent"), (-2.66, "percent"), (0.0, "percent"), (1200.0, "count"),
                                        (-35.0, "count"), (None, "count"))] == [
        "0.7 points short", "met, 2.7 points to spare", "met exactly", "1,200 short", "met, 35 to spare", "-"]


def test_a_gap_that_rounds_to_nothing_is_met_as_shown() -> None:
    from ibp_pipeline.dashboards.board_pack import gap_text
    from ibp_pipeline.dashboards.formatting import meets
    assert gap_text(0.0369, "percent") == "met exactly" and meets(92.0369, 92.0, "at_most", "percent")
