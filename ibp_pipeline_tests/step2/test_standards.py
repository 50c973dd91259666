"""Standards registry, local ambitions and targets: validation messages, trajectories, the +5 points rule,
local overrides, the Medium Term Planning Framework milestones (+7 points or 65%, the diagnostics rule, year-average
targets), the planning year in force, and the real registry on a copy of the step-1 warehouse."""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml

from ibp_pipeline.step2_triple_aim import standards as st
from ibp_pipeline.step2_triple_aim.standards import (
    PLANNING_YEAR_ENV, REGISTRY_PATH, StandardsConfigError, build_standards, build_targets, financial_year,
    load_local_ambitions, load_registry, meets_year_average, planning_year_in_force, standards_frame, targets_frame,
    trajectory_end, trajectory_through, trajectory_value, year_average)

D = dt.date


# ---- helpers --------------------------------------------------------------------------------------------------
def _source() -> dict:
    return {"document": "Test guidance", "year": 2025, "url": "https://example.org/guidance"}


def _standard(**over) -> dict:
    base = {"standard_id": "rtt_traj", "metric_id": "rtt_18wk_pct", "name": "RTT trajectory",
            "kind": "planning_target", "target": 62, "direction": "at_least", "effective_from": D(2025, 4, 1),
            "deadline": D(2026, 3, 1), "baseline_period": D(2025, 3, 1),
            "applies_to": ["provider", "icb", "region", "england"], "source": _source()}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def _constitutional(**over) -> dict:
    return _standard(standard_id="rtt_const", name="RTT constitutional", kind="constitutional", target=92,
                     effective_from=D(2012, 4, 1), deadline=None, baseline_period=None, **over)


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _registry(tmp_path: Path, *items: dict) -> st.Registry:
    return load_registry(_write(tmp_path / "standards.yaml", {"version": "t1", "standards": list(items)}))


def _values(rows: list[tuple]) -> pl.DataFrame:
    """(org_code, org_level, metric_id, period_start, value) -> the values frame targets_frame reads."""
    frame = pl.DataFrame(rows, schema=["org_code", "org_level", "metric_id", "period_start", "value"], orient="row")
    return frame.with_columns(period_grain=pl.lit("month"), numerator=pl.lit(None, pl.Float64),
                              denominator=pl.lit(None, pl.Float64)).cast(st.VALUE_SCHEMA)  # type: ignore[arg-type]


def _months(start: D, n: int) -> list[D]:
    return [st._add_months(start, i) for i in range(n)]


def _raw_registry() -> dict:
    return yaml.safe_load(REGISTRY_PATH.read_text(encoding="utf-8"))


def _error(tmp_path: Path, data: dict, name: str = "standards.yaml") -> str:
    with pytest.raises(StandardsConfigError) as info:
        load_registry(_write(tmp_path / name, data))
    message = str(info.value)
    assert "\n" not in message
    return message


# ---- the seeded registry ----------------------------------------------------------------------------------------
def test_seeded_registry_holds_the_issue_list():
    registry = load_registry()
    by_id = registry.by_id()
    assert registry.config_file == "ibp_pipeline/documents/standards.yaml"
    assert registry.version == "2026.1"
    mtpf = {"ae_4hr_mtpf", "rtt_18wk_mtpf", "cancer_fds_mtpf", "cancer_31d_mtpf", "cancer_62d_mtpf", "dm01_6wk_mtpf"}
    expect = {  # standard_id: (metric, kind, target, direction, deadline)
        "ae_4hr_constitutional": ("ae_4hr_pct", "constitutional", 95, "at_least", None),
        "ae_4hr_2026": ("ae_4hr_pct", "planning_target", 78, "at_least", D(2026, 3, 1)),
        "rtt_18wk_constitutional": ("rtt_18wk_pct", "constitutional", 92, "at_least", None),
        "rtt_18wk_2026": ("rtt_18wk_pct", "planning_target", 65, "at_least", D(2026, 3, 1)),
        "rtt_52wk_share_2026": ("rtt_52wk_waiters", "planning_target", 1, "at_most", D(2026, 3, 1)),
        "cancer_fds_2026": ("cancer_fds_pct", "planning_target", 80, "at_least", D(2026, 3, 1)),
        "cancer_31d_constitutional": ("cancer_31d_pct", "constitutional", 96, "at_least", None),
        "cancer_62d_constitutional": ("cancer_62d_pct", "constitutional", 85, "at_least", None),
        "cancer_62d_2026": ("cancer_62d_pct", "planning_target", 75, "at_least", D(2026, 3, 1)),
        "dm01_6wk_constitutional": ("dm01_6wk_pct", "constitutional", 1, "at_most", None),
        "ga_bed_occupancy_92": ("ga_bed_occupancy_pct", "planning_target", 92, "at_most", None),
    }
    assert set(by_id) == set(expect) | mtpf  # the 2025/26 targets stay as history beside the 2026/27 ones
    for sid, (metric, kind, target, direction, deadline) in expect.items():
        s = by_id[sid]
        assert (s.metric_id, s.kind, s.target, s.direction, s.deadline) == (metric, kind, target, direction,
                                                                              deadline), sid
    assert by_id["rtt_18wk_2026"].minimum_improvement_points == 5
    assert by_id["rtt_52wk_share_2026"].ratio_of == "rtt_waiting_list"
    assert by_id["rtt_52wk_share_2026"].measure_id == "rtt_52wk_waiters_pct_of_rtt_waiting_list"
    assert by_id["ae_4hr_2026"].baseline_month == D(2025, 3, 1)


def test_default_baseline_is_the_march_before_effective_from(tmp_path):
    reg = _registry(tmp_path, _standard(baseline_period=None, effective_from=D(2025, 4, 1)),
                    _standard(standard_id="b", baseline_period=None, effective_from=D(2026, 1, 1),
                              deadline=D(2026, 12, 1)))
    assert reg.by_id()["rtt_traj"].baseline_month == D(2025, 3, 1)
    assert reg.by_id()["b"].baseline_month == D(2025, 3, 1)


# ---- validation: one clear line naming file, standard and field --------------------------------------------------
def test_target_out_of_range_names_file_standard_and_field(tmp_path):
    data = _raw_registry()
    data["standards"][3]["target"] = 165
    assert _error(tmp_path, data) == ("standards.yaml: standards[3] (rtt_18wk_2026).target: must be between 0 "
                                      "and 100, got 165")


def test_wrong_type(tmp_path):
    data = _raw_registry()
    data["standards"][1]["target"] = "seventy-eight"
    assert _error(tmp_path, data) == ("standards.yaml: standards[1] (ae_4hr_2026).target: must be a number, "
                                      "got 'seventy-eight'")
    data = _raw_registry()
    data["standards"][1]["effective_from"] = "2025-04-01"  # quoted: text, not a date
    assert _error(tmp_path, data) == ("standards.yaml: standards[1] (ae_4hr_2026).effective_from: must be a date "
                                      "written unquoted as YYYY-MM-DD, got '2025-04-01'")
    data = _raw_registry()
    data["version"] = 2025.1
    assert _error(tmp_path, data) == "standards.yaml: version: must be text (quote it), got 2025.1"


def test_unknown_metric_id(tmp_path):
    data = _raw_registry()
    data["standards"][0]["metric_id"] = "ae_4hour_pct"
    assert _error(tmp_path, data) == ("standards.yaml: standards[0] (ae_4hr_constitutional).metric_id: unknown "
                                      "metric id: not in the step-1 metric catalogue, got 'ae_4hour_pct'")
    data = _raw_registry()
    data["standards"][4]["ratio_of"] = "rtt_list"
    assert "standards[4] (rtt_52wk_share_2026).ratio_of: unknown metric id" in _error(tmp_path, data)


def test_deadline_before_effective_from(tmp_path):
    data = _raw_registry()
    data["standards"][1]["deadline"] = D(2024, 3, 1)
    assert _error(tmp_path, data) == ("standards.yaml: standards[1] (ae_4hr_2026).deadline: must not be before "
                                      "effective_from (2025-04-01), got 2024-03-01")


def test_other_faults_are_named(tmp_path):
    cases = [
        (lambda d: d["standards"][2].pop("direction"),
         "standards[2] (rtt_18wk_constitutional).direction: required field is missing"),
        (lambda d: d["standards"][2].update(threshold=3),
         "standards[2] (rtt_18wk_constitutional).threshold: unknown field"),
        (lambda d: d["standards"][2].update(kind="statutory"),
         "standards[2] (rtt_18wk_constitutional).kind: must be 'constitutional' or 'planning_target', "
         "got 'statutory'"),
        (lambda d: d["standards"][9].update(direction="at_least"),
         "standards[9] (dm01_6wk_constitutional).direction: dm01_6wk_pct is lower-is-better in the catalogue, so "
         "the direction must be at_most, got 'at_least'"),
        (lambda d: d["standards"][5].update(standard_id="ae_4hr_2026"),
         "standards[5] (ae_4hr_2026).standard_id: duplicate: 'ae_4hr_2026' is already used by an earlier entry"),
        (lambda d: d["standards"][0].update(deadline=D(2026, 3, 1)),
         "standards[0] (ae_4hr_constitutional).deadline: a constitutional standard is a flat line"),
        (lambda d: d["standards"][1].update(deadline=D(2026, 3, 15)),
         "standards[1] (ae_4hr_2026).deadline: must be the first day of a month (a period), got 2026-03-15"),
        (lambda d: d["standards"][1]["source"].update(year="2025"),
         "standards[1] (ae_4hr_2026).source.year: must be a whole number, got '2025'"),
        (lambda d: d["standards"][3].update(applies_to=["trust"]),
         "standards[3] (rtt_18wk_2026).applies_to[0]: must be 'provider', 'icb', 'region' or 'england', got 'trust'"),
        (lambda d: d["standards"][2].update(minimum_improvement_points=5),
         "standards[2] (rtt_18wk_constitutional).minimum_improvement_points: only a trajectory"),
    ]
    for mutate, expected in cases:
        data = _raw_registry()
        mutate(data)
        message = _error(tmp_path, data)
        assert message.startswith("standards.yaml: ") and expected in message, (expected, message)


def test_several_errors_stay_on_one_line(tmp_path):
    data = _raw_registry()
    data["standards"][0]["target"] = 101
    data["standards"][1]["target"] = -3
    message = _error(tmp_path, data)
    assert message.endswith("(and 1 more error)")
    assert message.startswith("standards.yaml: standards[0] (ae_4hr_constitutional).target:")


def test_unreadable_files(tmp_path):
    bad = tmp_path / "standards.yaml"
    bad.write_text("version: '1'\nstandards: [\n", encoding="utf-8")
    with pytest.raises(StandardsConfigError, match=r"^standards.yaml: not valid YAML at line \d+"):
        load_registry(bad)
    bad.write_text("- just a list\n", encoding="utf-8")
    with pytest.raises(StandardsConfigError, match=r"^standards.yaml: \(top level\): must be a mapping"):
        load_registry(bad)
    with pytest.raises(StandardsConfigError, match="file not found"):
        load_registry(tmp_path / "missing.yaml")


def _local(**over) -> dict:
    base = _standard(standard_id="local_traj", target=70, applies_to=["provider"])
    base.update(org_codes=["T1"], overrides="rtt_traj")
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def test_local_ambition_errors(tmp_path):
    reg = _registry(tmp_path, _standard(), _constitutional())

    def error(*items: dict) -> str:
        path = _write(tmp_path / "local_ambitions.yaml", {"version": "l1", "standards": list(items)})
        with pytest.raises(StandardsConfigError) as info:
            load_local_ambitions(path, reg)
        assert "\n" not in str(info.value)
        return str(info.value)

    assert error(_local(overrides="rtt_2030")) == (
        "local_ambitions.yaml: standards[0] (local_traj).overrides: unknown national standard_id 'rtt_2030' "
        "(known: rtt_const, rtt_traj)")
    assert error(_local(metric_id="ae_4hr_pct")) == (
        "local_ambitions.yaml: standards[0] (local_traj).overrides: national standard 'rtt_traj' measures "
        "rtt_18wk_pct, not ae_4hr_pct")
    assert error(_local(org_codes=[])).startswith("local_ambitions.yaml: standards[0] (local_traj).org_codes: ")
    assert error(_local(org_codes=["r0a"])).startswith(
        "local_ambitions.yaml: standards[0] (local_traj).org_codes: organisation codes are upper-case")
    assert error(_local(standard_id="rtt_traj")) == (
        "local_ambitions.yaml: standards[0] (rtt_traj).standard_id: duplicate: 'rtt_traj' is already used by a "
        "national standard")
    assert error(_local(target=165)) == ("local_ambitions.yaml: standards[0] (local_traj).target: must be between "
                                         "0 and 100, got 165")


def test_local_ambitions_file_location(tmp_path, monkeypatch):
    reg = _registry(tmp_path, _standard())
    monkeypatch.delenv(st.LOCAL_AMBITIONS_ENV, raising=False)
    monkeypatch.setenv("IBP_DATA_DIR", str(tmp_path / "data"))  # the default follows the data folder
    assert st.local_ambitions_path() == (tmp_path / "data" / "config" / "local_ambitions.yaml", False)
    assert load_local_ambitions(None, reg) is None  # the default file is optional
    (tmp_path / "data" / "config").mkdir(parents=True)
    _write(tmp_path / "data" / "config" / "local_ambitions.yaml", {"version": "d1", "standards": [_local()]})
    assert load_local_ambitions(None, reg).version == "d1"
    monkeypatch.setenv(st.LOCAL_AMBITIONS_ENV, str(tmp_path / "named_but_absent.yaml"))
    with pytest.raises(StandardsConfigError, match="file not found"):
        load_local_ambitions(None, reg)  # a file asked for by name must exist
    path = _write(tmp_path / "mine.yaml", {"version": "l1", "standards": [_local()]})
    monkeypatch.setenv(st.LOCAL_AMBITIONS_ENV, str(path))
    local = load_local_ambitions(None, reg)
    assert local is not None and local.config_file == str(path)


def test_example_local_ambitions_file_is_valid():
    example = st.PROJECT_ROOT / "data" / "config" / "local_ambitions.example.yaml"
    local = load_local_ambitions(example, load_registry())
    assert local is not None and {s.overrides for s in local.standards} == {"ae_4hr_2026", None}


# ---- trajectory maths -------------------------------------------------------------------------------------------
def test_trajectory_interpolates_month_by_month(tmp_path):
    """Baseline 50 in March 2025, target 62 in March 2026: one point a month, held after the deadline."""
    reg = _registry(tmp_path, _standard())
    months = _months(D(2024, 4, 1), 12) + [D(2026, 5, 1)]  # data to March 2025, then May 2026
    values = _values([("T1", "provider", "rtt_18wk_pct", m, 50.0) for m in months])
    frame = targets_frame(values, reg).sort("period_start")
    assert frame["period_start"].to_list() == _months(D(2025, 4, 1), 14)  # not before effective_from
    assert frame["target_value"].to_list() == pytest.approx([51 + i for i in range(12)] + [62, 62])
    assert frame["baseline_value"].unique().to_list() == [50.0]
    assert frame["baseline_method"][0] == "value at 2025-03"
    assert frame["is_trajectory"].all() and frame["is_primary"].all()
    assert "from baseline 50.00 to end target 62" in frame["target_method"][0]
    for m, expected in [(D(2025, 3, 1), 50.0), (D(2025, 9, 1), 56.0), (D(2026, 3, 1), 62.0), (D(2027, 1, 1), 62.0)]:
        assert trajectory_value(m, D(2025, 3, 1), 50.0, 62.0, D(2026, 3, 1), "at_least") == pytest.approx(expected)


def test_trajectory_at_most_and_baseline_fallbacks(tmp_path):
    reg = _registry(tmp_path, _standard(standard_id="share", metric_id="dm01_6wk_pct", target=1,
                                        direction="at_most"))
    rows = [("A", "provider", "dm01_6wk_pct", D(2025, 3, 1), 13.0),  # baseline at March
            ("B", "provider", "dm01_6wk_pct", D(2025, 1, 1), 7.0),  # falls back to January
            ("B", "provider", "dm01_6wk_pct", D(2025, 4, 1), 7.0),
            ("C", "provider", "dm01_6wk_pct", D(2024, 11, 1), 9.0),  # too old: no baseline
            ("C", "provider", "dm01_6wk_pct", D(2025, 4, 1), 9.0),
            ("E", "provider", "dm01_6wk_pct", D(2025, 3, 1), 0.5)]  # already meets the end target
    frame = targets_frame(_values(rows), reg)
    april = frame.filter(pl.col("period_start") == D(2025, 4, 1))
    first = {r["org_code"]: r for r in april.iter_rows(named=True)}
    assert first["A"]["target_value"] == pytest.approx(12.0)
    assert first["B"]["target_value"] == pytest.approx(6.5)
    assert first["B"]["baseline_method"] == "no value at 2025-03; latest value before it, at 2025-01"
    assert first["C"]["baseline_value"] is None and first["C"]["target_value"] == 1.0
    assert first["C"]["baseline_method"] == "no value from 2025-01 to 2025-03: flat at the standard's target"
    assert first["E"]["target_value"] == 1.0 and "already meets" in first["E"]["target_method"]


def test_minimum_improvement_points_rule(tmp_path):
    # the pure rule: 65% by March 2026 with at least +5 points per trust
    assert trajectory_end(55.0, 65.0, "at_least", 5) == 65.0
    assert trajectory_end(62.0, 65.0, "at_least", 5) == 67.0
    assert trajectory_end(97.0, 65.0, "at_least", 5) == 100.0
    assert trajectory_end(90.0, 65.0, "at_least", 5, cap=92) == 92.0
    assert trajectory_end(12.0, 1.0, "at_most", 5) == 1.0  # min(1, 12 - 5)
    assert trajectory_end(3.0, 1.0, "at_most", 5) == 0.0  # min(1, 3 - 5), held at 0
    assert trajectory_end(None, 65.0, "at_least", 5) == 65.0
    # in the table: trusts only (minimum_improvement_applies_to defaults to provider), not the ICB
    reg = _registry(tmp_path, _standard(target=65, minimum_improvement_points=5))
    rows = [(org, level, "rtt_18wk_pct", D(2025, 3, 1), base)
            for org, level, base in [("T1", "provider", 62.0), ("T2", "provider", 50.0), ("Q1", "icb", 62.0)]]
    frame = targets_frame(_values(rows), reg)
    end = dict(frame.filter(pl.col("period_start") == D(2026, 3, 1)).select("org_code", "target_value").iter_rows())
    assert end == {"T1": pytest.approx(67.0), "T2": pytest.approx(65.0), "Q1": pytest.approx(65.0)}
    t1 = frame.filter(pl.col("org_code") == "T1").sort("period_start")
    assert t1["target_value"][0] == pytest.approx(62 + 5 / 12)
    assert t1["end_target_value"][0] == pytest.approx(67.0)
    assert "max(65, baseline + 5 points) = 67.00" in t1["target_method"][0]


def test_constitutional_is_flat_and_trajectory_is_primary(tmp_path):
    reg = _registry(tmp_path, _standard(), _constitutional())
    values = _values([("T1", "provider", "rtt_18wk_pct", m, 50.0) for m in _months(D(2025, 1, 1), 6)])
    frame = targets_frame(values, reg)
    const = frame.filter(pl.col("standard_id") == "rtt_const")
    assert const["target_value"].unique().to_list() == [92.0] and not const["is_trajectory"].any()
    assert const["period_start"].max() == D(2025, 6, 1)  # a flat line runs to the last data month
    primary = dict(frame.filter("is_primary").select("period_start", "standard_id").iter_rows())
    assert primary[D(2025, 3, 1)] == "rtt_const" and primary[D(2025, 4, 1)] == "rtt_traj"
    assert frame.group_by("period_start").agg(pl.col("is_primary").sum())["is_primary"].unique().to_list() == [1]


def test_stopped_reporting_is_not_extended(tmp_path):
    """An organisation that stopped reporting (a merged trust) keeps its trajectory only to its last month."""
    reg = _registry(tmp_path, _standard(effective_from=D(2024, 4, 1), baseline_period=D(2024, 3, 1)))
    rows = [("OLD", "provider", "rtt_18wk_pct", m, 50.0) for m in _months(D(2024, 1, 1), 6)]
    rows += [("NEW", "provider", "rtt_18wk_pct", m, 50.0) for m in _months(D(2024, 1, 1), 14)]
    frame = targets_frame(_values(rows), reg)
    last = dict(frame.group_by("org_code").agg(pl.col("period_start").max()).iter_rows())
    assert last == {"OLD": D(2024, 6, 1), "NEW": D(2026, 3, 1)}


# ---- database tables, local override ----------------------------------------------------------------------------
def _hand_made_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("create schema s1_current_state")
    con.execute("""create table s1_current_state.metric_values (org_code varchar, org_level varchar,
                   period_start date, period_grain varchar, metric_id varchar, value double, numerator double,
                   denominator double)""")
    rows = []
    for org, level in [("T1", "provider"), ("T2", "provider"), ("Q1", "icb")]:
        for i, m in enumerate(_months(D(2024, 10, 1), 6)):
            rows.append((org, level, m, "month", "rtt_18wk_pct", 50.0 + i, None, None))
            rows.append((org, level, m, "month", "rtt_52wk_waiters", 30.0, None, None))
            rows.append((org, level, m, "month", "rtt_waiting_list", 1000.0 if org != "T2" else 0.0, None, None))
    con.executemany("insert into s1_current_state.metric_values values (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return con


def test_local_override_is_applied_and_reported(tmp_path):
    reg = _registry(tmp_path, _standard(), _constitutional())
    local_path = _write(tmp_path / "local_ambitions.yaml", {"version": "l1", "owner": "ICB Q1", "standards": [
        _local(org_codes=["T1"], target=70),
        _local(standard_id="extra", overrides=None, org_codes=["T2"], kind="constitutional", deadline=None,
               baseline_period=None, target=80, effective_from=D(2020, 4, 1))]})
    local = load_local_ambitions(local_path, reg)
    con = _hand_made_warehouse(tmp_path / "w.duckdb")
    assert build_standards(con, reg, local) == 4
    std = {r[0]: r[1:] for r in con.sql("select standard_id, origin, overrides, org_codes, config_file "
                                        "from s2_triple_aim.standards").fetchall()}
    assert std["local_traj"] == ("local", "rtt_traj", "T1", str(local_path))
    assert std["rtt_traj"][0] == "national"
    build_targets(con, reg, local)
    got = con.sql("""select org_code, standard_id, applied, config_file, overrides_standard_id, bool_or(is_primary)
                     from s2_triple_aim.targets where metric_id = 'rtt_18wk_pct' and period_start = '2026-03-01'
                     group by all order by 1, 2""").fetchall()
    assert got == [
        ("Q1", "rtt_traj", "national", str(tmp_path / "standards.yaml"), None, True),
        ("T1", "local_traj", "local", str(local_path), "rtt_traj", True),  # replaces rtt_traj for T1
        ("T2", "rtt_traj", "national", str(tmp_path / "standards.yaml"), None, True),
    ]
    t1_end = con.sql("select target_value from s2_triple_aim.targets where org_code = 'T1' and "
                     "period_start = '2026-03-01'").fetchall()
    assert t1_end == [(70.0,)]
    # the extra local constitutional standard sits alongside the national one for T2 (and the local wins primary)
    t2 = con.sql("""select standard_id, applied, is_primary from s2_triple_aim.targets where org_code = 'T2'
                    and metric_id = 'rtt_18wk_pct' and period_start = '2025-01-01' order by 1""").fetchall()
    assert t2 == [("extra", "local", True), ("rtt_const", "national", False)]


def test_ratio_standard_measures_the_share_of_the_list(tmp_path):
    reg = _registry(tmp_path, _standard(standard_id="share52", metric_id="rtt_52wk_waiters",
                                        ratio_of="rtt_waiting_list", target=1, direction="at_most",
                                        effective_from=D(2025, 1, 1), baseline_period=D(2024, 12, 1)))
    con = _hand_made_warehouse(tmp_path / "w.duckdb")
    build_targets(con, reg)
    got = con.sql("""select org_code, metric_id, baseline_value, round(target_value, 6) from s2_triple_aim.targets
                     where period_start = '2025-01-01' order by 1""").fetchall()
    # 30 of 1,000 = 3% at the December baseline; 15 months to March 2026: 3 - 2/15 in January; T2's list is 0
    assert got == [("Q1", "rtt_52wk_waiters_pct_of_rtt_waiting_list", 3.0, round(3 - 2 / 15, 6)),
                   ("T1", "rtt_52wk_waiters_pct_of_rtt_waiting_list", 3.0, round(3 - 2 / 15, 6))]


# ---- real data --------------------------------------------------------------------------------------------------
def test_real_registry_on_the_step1_warehouse(real_warehouse, tmp_path):
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(real_warehouse, db)
    con = duckdb.connect(str(db))
    registry = load_registry()
    assert build_standards(con, registry) == len(registry.standards)
    n = build_targets(con, registry)
    assert n > 10_000
    per_standard = dict(con.sql("select standard_id, count(*) from s2_triple_aim.targets group by 1").fetchall())
    assert set(per_standard) == set(registry.by_id())
    # exactly one primary row per organisation x metric x period
    dupes = con.sql("""select count(*) from (select org_code, metric_id, period_start, sum(is_primary::int) p
                       from s2_triple_aim.targets group by all having p <> 1)""").fetchall()[0][0]
    assert dupes == 0
    # trajectories end on their end target at the deadline; trusts' RTT end targets follow the +5 rule
    off = con.sql("""select count(*) from s2_triple_aim.targets where is_trajectory and period_start = deadline
                     and abs(target_value - end_target_value) > 1e-9""").fetchall()[0][0]
    assert off == 0
    rule = con.sql("""select count(*), sum((abs(end_target_value - greatest(65, least(92, baseline_value + 5)))
                      < 1e-9)::int) from (select distinct org_code, baseline_value, end_target_value
                      from s2_triple_aim.targets where standard_id = 'rtt_18wk_2026' and org_level = 'provider'
                      and baseline_value is not null)""").fetchall()[0]
    assert rule[0] > 100 and rule[0] == rule[1]
    assert con.sql("select min(target_value), max(target_value) from s2_triple_aim.targets").fetchall()[0] \
        >= (0.0, 0.0)
    england = con.sql("""select target_value from s2_triple_aim.targets where org_code = 'ENGLAND'
                         and standard_id = 'ae_4hr_2026' and period_start = '2026-03-01'""").fetchall()
    assert england == [(78.0,)]
    # the 2026/27 framework: every trust's March 2027 RTT milestone is +7 points or 65%, whichever is greater
    # (within 92), on its March 2026 value or, the bundled data ending in 2025, its latest value before it
    rule = con.sql("""select count(*), sum((abs(milestone_target_value - greatest(65, least(92, baseline_value + 7)))
                      < 1e-9)::int) from s2_triple_aim.targets where standard_id = 'rtt_18wk_mtpf'
                      and org_level = 'provider' and period_start = '2027-03-01' and baseline_value is not null
                      """).fetchall()[0]
    assert rule[0] > 100 and rule[0] == rule[1]
    methods = con.sql("""select distinct baseline_method from s2_triple_aim.targets
                         where standard_id like '%_mtpf' and baseline_value is not null""").fetchall()
    assert methods and all(m == "value at 2026-03" or m.startswith("no value at 2026-03; latest value before it, at ")
                           for (m,) in methods)
    year = con.sql("""select count(*), min(target_value), max(target_value), bool_and(averaged_over_financial_year)
                      from s2_triple_aim.targets where org_code = 'ENGLAND' and standard_id = 'ae_4hr_mtpf'
                      and financial_year = '2028/29'""").fetchall()
    assert year == [(12, 85.0, 85.0, True)]
    primary = dict(con.sql("""select metric_id, standard_id from s2_triple_aim.targets where org_code = 'ENGLAND'
                              and period_start = '2026-04-01' and is_primary""").fetchall())
    expected = {"ae_4hr_pct": "ae_4hr_mtpf", "rtt_18wk_pct": "rtt_18wk_mtpf", "dm01_6wk_pct": "dm01_6wk_mtpf",
                "cancer_fds_pct": "cancer_fds_mtpf", "cancer_31d_pct": "cancer_31d_mtpf",
                "cancer_62d_pct": "cancer_62d_mtpf"}
    assert {m: primary.get(m) for m in expected} == expected
    # in_force on the targets is the standard's, for the planning year in force (today's, or IBP_PLANNING_YEAR)
    mismatch = con.sql("""select count(*) from s2_triple_aim.targets t join s2_triple_aim.standards s
                          using (standard_id) where t.in_force <> s.in_force or t.planning_year <> s.planning_year
                          """).fetchall()[0][0]
    assert mismatch == 0


# ---- Medium Term Planning Framework 2026/27 to 2028/29 ----------------------------------------------------------
def _milestones(s: st.Standard) -> list[tuple]:
    return [(m.deadline, m.target, tuple(m.applies_to) if m.applies_to else None, m.minimum_improvement_points,
             m.minimum_improvement_cap, m.averaged_over_financial_year) for m in s.milestones or []]


def test_seeded_registry_holds_the_framework_milestones():
    by_id = load_registry().by_id()
    mar27, mar29 = D(2027, 3, 1), D(2029, 3, 1)
    expect = {  # standard_id: (metric, direction, applies_to, milestones)
        "ae_4hr_mtpf": ("ae_4hr_pct", "at_least", ["provider", "england"],
                        [(mar27, 82, ("provider",), None, None, False),
                         (mar29, 85, ("england",), None, None, True)]),
        "rtt_18wk_mtpf": ("rtt_18wk_pct", "at_least", ["provider", "icb", "region", "england"],
                          [(mar27, 65, ("provider",), 7, 92, False), (mar27, 70, ("england",), None, None, False),
                           (mar29, 92, None, None, None, False)]),
        "cancer_fds_mtpf": ("cancer_fds_pct", "at_least", ["provider", "icb", "region", "england"],
                            [(D(2026, 4, 1), 80, None, None, None, False), (mar29, 80, None, None, None, False)]),
        "cancer_31d_mtpf": ("cancer_31d_pct", "at_least", ["provider", "icb", "region", "england"],
                            [(mar27, 94, ("provider",), None, None, False), (mar29, 96, None, None, None, False)]),
        "cancer_62d_mtpf": ("cancer_62d_pct", "at_least", ["provider", "icb", "region", "england"],
                            [(mar27, 80, ("provider",), None, None, False), (mar29, 85, None, None, None, False)]),
        "dm01_6wk_mtpf": ("dm01_6wk_pct", "at_most", ["provider", "icb", "region", "england"],
                          [(mar27, 20, ("icb",), 3, 1, False), (mar27, 14, ("england",), None, None, False),
                           (mar29, 1, None, None, None, False)]),
    }
    for sid, (metric, direction, levels, milestones) in expect.items():
        s = by_id[sid]
        assert (s.metric_id, s.kind, s.direction, s.applies_to) == (metric, "planning_target", direction, levels)
        assert (s.effective_from, s.baseline_month, s.baseline_fallback) == (D(2026, 4, 1), D(2026, 3, 1), "latest")
        assert _milestones(s) == milestones, sid
        assert s.source.year == 2025 and "Medium Term Planning Framework" in s.source.document
        assert s.notes.startswith('"'), sid  # quotes the framework
        assert s.planning_years == ("2026/27", "2028/29")
    assert (by_id["ae_4hr_mtpf"].final_target, by_id["ae_4hr_mtpf"].final_deadline) == (85, D(2029, 3, 1))


def _mtpf_error(tmp_path: Path, mutate) -> str:
    data = _raw_registry()
    index = next(i for i, s in enumerate(data["standards"]) if s["standard_id"] == "rtt_18wk_mtpf")
    mutate(data["standards"][index])
    return _error(tmp_path, data).replace(f"standards[{index}]", "standards[i]")


def test_milestone_faults_are_named(tmp_path):
    cases = [
        (lambda s: s["milestones"][0].update(target=165),
         "standards[i] (rtt_18wk_mtpf).milestones[0].target: must be between 0 and 100, got 165"),
        (lambda s: s["milestones"][1].update(deadline=D(2027, 3, 15)),
         "standards[i] (rtt_18wk_mtpf).milestones[1].deadline: must be the first day of a month"),
        (lambda s: s["milestones"][1].update(deadline=D(2026, 1, 1)),
         "standards[i] (rtt_18wk_mtpf).milestones[1].deadline: must not be before effective_from (2026-04-01)"),
        (lambda s: (s.update(applies_to=["provider", "icb", "england"]),
                    s["milestones"][2].update(applies_to=["provider", "icb", "region", "england"])),
         "standards[i] (rtt_18wk_mtpf).milestones[2].applies_to: 'region' is not in the standard's applies_to"),
        (lambda s: s["milestones"].pop(),
         "standards[i] (rtt_18wk_mtpf).applies_to: no milestone applies to 'icb'"),
        (lambda s: s.update(target=92),
         "standards[i] (rtt_18wk_mtpf).target: a standard with milestones gives this on each milestone instead"),
        (lambda s: s.update(kind="constitutional"),
         "standards[i] (rtt_18wk_mtpf).milestones: only a planning_target has milestones"),
        (lambda s: s["milestones"][2].update(deadline=D(2027, 3, 1)),
         "standards[i] (rtt_18wk_mtpf).milestones[2].deadline: must come after the provider milestone due 2027-03"),
        (lambda s: s["milestones"][2].update(averaged_over_financial_year=True, deadline=D(2028, 12, 1)),
         "standards[i] (rtt_18wk_mtpf).milestones[2].deadline: a target averaged over a financial year is due at "
         "its last month (March), got 2028-12-01"),
        (lambda s: s["milestones"][1].update(minimum_improvement_cap=92),
         "standards[i] (rtt_18wk_mtpf).milestones[1].minimum_improvement_cap: only goes with "
         "minimum_improvement_points"),
        (lambda s: s["milestones"][0].update(minimum_improvement_cap=60),
         "standards[i] (rtt_18wk_mtpf).milestones[0].minimum_improvement_cap: must not ask less than the target "
         "(65), got 60"),
        (lambda s: s.update(baseline_fallback="oldest"),
         "standards[i] (rtt_18wk_mtpf).baseline_fallback: must be 'recent' or 'latest', got 'oldest'"),
    ]
    for mutate, expected in cases:
        message = _mtpf_error(tmp_path, mutate)
        assert message.startswith("standards.yaml: ") and expected in message, (expected, message)


def test_a_year_average_milestone_must_start_after_the_one_before(tmp_path):
    """A year-average target for 2027/28 starts in April 2027; a milestone due March 2027 is fine, one due
    April 2027 is not (the two would overlap)."""
    ok = _standard(deadline=None, target=None, milestones=[
        {"deadline": D(2026, 3, 1), "target": 70}, {"deadline": D(2027, 3, 1), "target": 75,
                                                     "averaged_over_financial_year": True}])
    assert _registry(tmp_path, ok).by_id()["rtt_traj"].milestones_for("icb")[1].knot_month == D(2026, 4, 1)
    bad = _standard(deadline=None, target=None, milestones=[
        {"deadline": D(2026, 4, 1), "target": 70}, {"deadline": D(2027, 3, 1), "target": 75,
                                                     "averaged_over_financial_year": True}])
    data = {"version": "t1", "standards": [bad]}
    assert "milestones[1].deadline: must come after the provider milestone due 2026-04" in _error(tmp_path, data)


# ---- the maths of the framework, by hand -------------------------------------------------------------------------
def test_plus_seven_points_or_65_percent_whichever_is_greater():
    """RTT: every trust +7 points or at least 65% by March 2027, held within the 92% constitutional standard."""
    for baseline, expected in [(50.0, 65.0),  # 57 < 65: 65
                               (58.0, 65.0),  # 65 = 65
                               (60.0, 67.0),  # 67 > 65: +7
                               (84.5, 91.5),
                               (88.0, 92.0),  # 95 capped at 92
                               (93.0, 92.0),  # already beyond the cap: 92 (flat: the baseline meets it)
                               (None, 65.0)]:  # no baseline: the 65% floor
        assert trajectory_end(baseline, 65.0, "at_least", 7, cap=92) == pytest.approx(expected), baseline


def test_diagnostics_three_points_or_20_percent_whichever_is_greater():
    """Lower is better: 'whichever is greater' is the greater improvement, the lower share waiting:
    min(20, baseline - 3), never asked below the 1% cap."""
    for baseline, expected in [(30.0, 20.0),  # 27 or 20: 20
                               (23.0, 20.0),  # 20 or 20
                               (22.0, 19.0),  # 19 or 20: 19
                               (15.0, 12.0),  # 12 or 20: 12
                               (3.5, 1.0),  # 0.5 held at the 1% cap
                               (0.5, 1.0),  # already below 1%: 1 (and flat, as the baseline meets it)
                               (None, 20.0)]:
        assert trajectory_end(baseline, 20.0, "at_most", 3, cap=1) == pytest.approx(expected), baseline


def test_trajectory_through_milestones_by_hand():
    """Baseline 60 in March 2026, 67 in March 2027, 92 in March 2029: 7/12 a month, then 25/24 a month."""
    knots = [(D(2027, 3, 1), 67.0), (D(2029, 3, 1), 92.0)]
    for month, expected in [(D(2026, 3, 1), 60.0), (D(2026, 4, 1), 60 + 7 / 12), (D(2026, 9, 1), 63.5),
                            (D(2027, 3, 1), 67.0), (D(2027, 4, 1), 67 + 25 / 24),
                            (D(2028, 3, 1), 79.5),  # March 2028: not set, half way from 67 to 92
                            (D(2028, 9, 1), 85.75), (D(2029, 3, 1), 92.0), (D(2030, 1, 1), 92.0)]:
        assert trajectory_through(month, D(2026, 3, 1), 60.0, knots, "at_least") == pytest.approx(expected), month
    # a baseline already meeting the first milestone: flat at it, then the line on to the next
    assert trajectory_through(D(2026, 9, 1), D(2026, 3, 1), 70.0, knots, "at_least") == 67.0
    assert trajectory_through(D(2028, 3, 1), D(2026, 3, 1), 70.0, knots, "at_least") == pytest.approx(79.5)
    # no baseline: flat at the first milestone until it
    assert trajectory_through(D(2026, 4, 1), D(2026, 3, 1), None, knots, "at_least") == 67.0
    # lower is better: 25% waiting to 20% in March 2027 and 1% in March 2029
    down = [(D(2027, 3, 1), 20.0), (D(2029, 3, 1), 1.0)]
    assert trajectory_through(D(2026, 9, 1), D(2026, 3, 1), 25.0, down, "at_most") == pytest.approx(22.5)
    assert trajectory_through(D(2028, 3, 1), D(2026, 3, 1), 25.0, down, "at_most") == pytest.approx(10.5)


def test_year_average_judgement():
    """85% 'as the average across 2028/29': the mean of April 2028 to March 2029, not the March value."""
    year = _months(D(2028, 4, 1), 12)
    even = dict(zip(year, [80.0] * 6 + [90.0] * 6))  # mean 85
    assert year_average(even, "2028/29") == pytest.approx(85.0)
    assert meets_year_average(even, "2028/29", 85, "at_least") is True
    strong_march = dict(zip(year, [80.0] * 11 + [95.0]))  # March 95, mean 81.25
    assert year_average(strong_march, "2028/29") == pytest.approx(81.25)
    assert meets_year_average(strong_march, "2028/29", 85, "at_least") is False
    weak_march = dict(zip(year, [87.0] * 11 + [70.0]))  # March 70, mean (957 + 70) / 12 = 85.58
    assert meets_year_average(weak_march, "2028/29", 85, "at_least") is True
    # months outside the year do not count; a missing month leaves it unjudged
    assert meets_year_average({**even, D(2028, 3, 1): 0.0, D(2029, 4, 1): 0.0}, "2028/29", 85, "at_least") is True
    assert meets_year_average({m: v for m, v in even.items() if m != D(2028, 8, 1)}, "2028/29", 85,
                              "at_least") is None
    # lower is better
    waiting = dict(zip(year, [2.0] * 6 + [0.5] * 6))  # mean 1.25
    assert meets_year_average(waiting, "2028/29", 1, "at_most") is False
    assert meets_year_average(waiting, "2028/29", 1.25, "at_most") is True


def test_planning_year_follows_the_date_and_the_setting(monkeypatch):
    assert financial_year(D(2026, 12, 7)) == "2026/27"
    assert financial_year(D(2027, 3, 31)) == "2026/27"
    assert financial_year(D(2027, 4, 1)) == "2027/28"
    assert financial_year(D(1999, 6, 1)) == "1999/00"
    monkeypatch.delenv(PLANNING_YEAR_ENV, raising=False)
    assert planning_year_in_force(D(2026, 12, 7)) == "2026/27"
    assert planning_year_in_force(D(2027, 4, 1)) == "2027/28"
    assert planning_year_in_force() == financial_year(dt.date.today())
    monkeypatch.setenv(PLANNING_YEAR_ENV, "2027/28")
    assert planning_year_in_force(D(2026, 12, 7)) == "2027/28"
    for bad in ("2027-28", "2027/29", "27/28", "2027/2028"):
        monkeypatch.setenv(PLANNING_YEAR_ENV, bad)
        with pytest.raises(StandardsConfigError) as info:
            planning_year_in_force()
        assert str(info.value) == (f"IBP_PLANNING_YEAR: must be a financial year written like 2026/27, "
                                   f"got {bad!r}")


def test_in_force_by_planning_year(monkeypatch):
    registry = load_registry()
    by_id = registry.by_id()
    assert by_id["ae_4hr_2026"].in_force("2025/26") and not by_id["ae_4hr_2026"].in_force("2026/27")
    for year, expected in [("2025/26", False), ("2026/27", True), ("2028/29", True), ("2029/30", False)]:
        assert by_id["ae_4hr_mtpf"].in_force(year) is expected, year
    assert by_id["ae_4hr_constitutional"].in_force("2030/31") and not by_id["cancer_62d_constitutional"].in_force(
        "2022/23")  # the combined 62-day standard starts October 2023
    frame = standards_frame(registry, planning_year="2026/27")
    in_force = dict(frame.select("standard_id", "in_force").iter_rows())
    assert in_force["ae_4hr_mtpf"] and not in_force["ae_4hr_2026"] and in_force["ga_bed_occupancy_92"]
    assert frame["planning_year"].unique().to_list() == ["2026/27"]
    row = frame.filter(pl.col("standard_id") == "rtt_18wk_mtpf").row(0, named=True)
    assert (row["target"], row["deadline"], row["planning_years"]) == (92.0, D(2029, 3, 1), "2026/27 to 2028/29")
    assert row["milestones"].startswith("2027-03: 65 for provider, or baseline + 7 points where that asks more")
    monkeypatch.setenv(PLANNING_YEAR_ENV, "2025/26")  # the setting looks at another year
    in_force = dict(standards_frame(registry).select("standard_id", "in_force").iter_rows())
    assert in_force["ae_4hr_2026"] and not in_force["ae_4hr_mtpf"]


def _framework_values() -> pl.DataFrame:
    """Data April to July 2025 only (as bundled): every baseline falls back to July 2025."""
    rows = []
    for org, level, rtt, ae, dm in [("T1", "provider", 60.0, 75.0, 25.0), ("T2", "provider", 88.0, 90.0, 10.0),
                                    ("Q1", "icb", 60.0, 75.0, 25.0), ("Q2", "icb", 60.0, 75.0, 15.0),
                                    ("ENGLAND", "england", 60.0, 75.0, 25.0)]:
        for m in _months(D(2025, 4, 1), 4):
            rows += [(org, level, "rtt_18wk_pct", m, rtt), (org, level, "ae_4hr_pct", m, ae),
                     (org, level, "dm01_6wk_pct", m, dm)]
    return _values(rows)


def test_framework_trajectories_by_hand():
    frame = targets_frame(_framework_values(), load_registry(), planning_year="2026/27")

    def target(org: str, sid: str, month: D) -> float:
        got = frame.filter(pl.col("org_code") == org, pl.col("standard_id") == sid, pl.col("period_start") == month)
        assert got.height == 1, (org, sid, month)
        return got["target_value"][0]

    mar27, mar28, mar29 = D(2027, 3, 1), D(2028, 3, 1), D(2029, 3, 1)
    # RTT: trust at 60 -> max(65, 67) = 67 in March 2027, 79.5 in March 2028 (interpolated), 92 in March 2029
    assert [target("T1", "rtt_18wk_mtpf", m) for m in (mar27, mar28, mar29)] == pytest.approx([67, 79.5, 92])
    assert target("T1", "rtt_18wk_mtpf", D(2026, 4, 1)) == pytest.approx(60 + 7 / 12)
    assert target("T2", "rtt_18wk_mtpf", mar27) == pytest.approx(92)  # 88 + 7 = 95, capped at 92
    # England 70% in March 2027; an ICB, with no March 2027 level, straight from 60 to 92 over 36 months
    assert [target("ENGLAND", "rtt_18wk_mtpf", m) for m in (mar27, mar28)] == pytest.approx([70, 81])
    assert target("Q1", "rtt_18wk_mtpf", mar27) == pytest.approx(60 + 32 * 12 / 36)
    # A&E: trusts 82% in March 2027 (none for ICBs); England reaches 85% in April 2028 and holds it all 2028/29
    assert target("T1", "ae_4hr_mtpf", mar27) == pytest.approx(82)
    assert target("T2", "ae_4hr_mtpf", D(2026, 4, 1)) == 82  # 90 already meets 82: flat
    assert frame.filter(pl.col("org_code") == "Q1", pl.col("metric_id") == "ae_4hr_pct",
                        pl.col("standard_id") == "ae_4hr_mtpf").height == 0
    assert target("ENGLAND", "ae_4hr_mtpf", mar27) == pytest.approx(75 + 10 * 12 / 25)
    england = frame.filter(pl.col("org_code") == "ENGLAND", pl.col("standard_id") == "ae_4hr_mtpf")
    year = england.filter(pl.col("financial_year") == "2028/29")
    assert year["target_value"].to_list() == [85.0] * 12 and year["averaged_over_financial_year"].all()
    series = dict(england.select("period_start", "target_value").iter_rows())
    assert meets_year_average(series, "2028/29", 85, "at_least") is True  # on trajectory meets the average
    # diagnostics: ICB at 25% -> min(20, 22) = 20, at 15% -> 12; England 14%; a trust straight to 1% in March 2029
    assert target("Q1", "dm01_6wk_mtpf", mar27) == pytest.approx(20)
    assert target("Q2", "dm01_6wk_mtpf", mar27) == pytest.approx(12)
    assert target("ENGLAND", "dm01_6wk_mtpf", mar27) == pytest.approx(14)
    assert target("T1", "dm01_6wk_mtpf", mar27) == pytest.approx(25 - 24 * 12 / 36)
    assert target("Q2", "dm01_6wk_mtpf", mar28) == pytest.approx((12 + 1) / 2)
    # the baseline is the latest value before April 2026, and the rows say so
    t1 = frame.filter(pl.col("org_code") == "T1", pl.col("standard_id") == "rtt_18wk_mtpf").sort("period_start")
    assert t1["baseline_value"].unique().to_list() == [60.0]
    assert t1["baseline_method"][0] == "no value at 2026-03; latest value before it, at 2025-07"
    assert t1["baseline_period"][0] == D(2026, 3, 1)
    assert "2028-03: 79.50 (not set by the guidance: interpolated on the line)" in t1["target_method"][0]
    assert "67.00 = max(65, min(baseline + 7 points, 92))" in t1["target_method"][0]
    # deadline and end target are the organisation's last milestone; milestone_* the one each row heads for
    assert (t1["deadline"].unique().to_list(), t1["end_target_value"].unique().to_list()) == ([mar29], [92.0])
    first = t1.row(0, named=True)
    assert (first["milestone_deadline"], first["milestone_target_value"]) == (mar27, pytest.approx(67.0))
    assert t1.filter(pl.col("period_start") == D(2027, 4, 1))["milestone_deadline"][0] == mar29
    assert t1["period_start"].to_list() == _months(D(2026, 4, 1), 36)
    assert t1["in_force"].all() and t1["planning_year"].unique().to_list() == ["2026/27"]
    assert t1["financial_year"].unique(maintain_order=True).to_list() == ["2026/27", "2027/28", "2028/29"]
    old = frame.filter(pl.col("standard_id") == "rtt_18wk_2026")
    assert not old["in_force"].any() and old["period_start"].max() == D(2026, 3, 1)


def test_the_year_in_force_trajectory_is_primary_over_a_held_one(tmp_path):
    """Data to June 2026: the 2025/26 trajectory is held at its end target after March 2026, but from April 2026
    the 2026/27 trajectory is primary; an ICB with no 2026/27 A&E target keeps the held one before the 95%."""
    rows = [(org, level, "ae_4hr_pct", m, 70.0) for org, level in [("T1", "provider"), ("Q1", "icb")]
            for m in _months(D(2025, 3, 1), 16)]
    frame = targets_frame(_values(rows), load_registry(), planning_year="2026/27")
    primary = {(o, p): s for o, p, s in frame.filter("is_primary").select("org_code", "period_start",
                                                                          "standard_id").iter_rows()}
    assert primary[("T1", D(2026, 3, 1))] == "ae_4hr_2026"
    assert primary[("T1", D(2026, 4, 1))] == "ae_4hr_mtpf"
    assert primary[("Q1", D(2026, 4, 1))] == "ae_4hr_2026"
    held = frame.filter(pl.col("org_code") == "T1", pl.col("standard_id") == "ae_4hr_2026",
                        pl.col("period_start") == D(2026, 6, 1))
    assert held["target_value"].to_list() == [78.0]
    # T1's baseline is its March 2026 value, exactly
    t1 = frame.filter(pl.col("org_code") == "T1", pl.col("standard_id") == "ae_4hr_mtpf")
    assert t1["baseline_method"][0] == "value at 2026-03"
    # a national trajectory in its span goes before a local one held after its deadline
    local_path = _write(tmp_path / "local.yaml", {"version": "l1", "standards": [
        _local(standard_id="local_ae", overrides="ae_4hr_2026", metric_id="ae_4hr_pct", target=80,
               org_codes=["T1"])]})
    registry = load_registry()
    frame = targets_frame(_values(rows), registry, load_local_ambitions(local_path, registry), "2026/27")
    primary = {(o, p): s for o, p, s in frame.filter("is_primary").select("org_code", "period_start",
                                                                          "standard_id").iter_rows()}
    assert primary[("T1", D(2026, 3, 1))] == "local_ae" and primary[("T1", D(2026, 4, 1))] == "ae_4hr_mtpf"
