"""Standards registry, local ambitions and targets: validation messages, trajectories, the +5 points rule,
local overrides, and the real registry on a copy of the step-1 warehouse."""
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
    REGISTRY_PATH, StandardsConfigError, build_standards, build_targets, load_local_ambitions, load_registry,
    targets_frame, trajectory_end, trajectory_value)

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
    assert registry.config_file == "ibp_pipeline/step2_triple_aim/standards.yaml"
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
    assert set(by_id) == set(expect)
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
    monkeypatch.setattr(st, "DEFAULT_LOCAL_AMBITIONS", tmp_path / "absent.yaml")
    assert load_local_ambitions(None, reg) is None  # the default file is optional
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
