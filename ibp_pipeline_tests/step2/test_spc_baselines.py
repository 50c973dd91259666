"""SPC baselines: where each series' limits come from (breaks, coverage changes, mergers, the recent window, the
analyst's rebases), worked out by hand on made-up months, and the build with a rebase file on a small database."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from ibp_pipeline.step2_triple_aim.spc import build_spc, load_baselines
from ibp_pipeline.step2_triple_aim.spc_baselines import (
    BaselineConfigError, Policy, load_policy, load_rebases, series_periods)
from ibp_pipeline_tests.step2.test_spc import _r_ptd

POLICY = Policy.model_validate({
    "version": 1, "baseline_months": 24, "min_baseline_months": 20, "recent_months": 36, "merge_months": 12,
    "breaks": [{"id": "covid", "from": date(2020, 3, 1), "to": date(2021, 3, 1), "reason": "the pandemic"}]})


def months(first: date, n: int) -> list[date]:
    return [date(first.year + (first.month - 1 + i) // 12, (first.month - 1 + i) % 12 + 1, 1) for i in range(n)]


def starts(found) -> list[tuple[date, str]]:
    return [(p.start, p.reason) for p in found]


def test_the_pandemic_months_are_a_period_of_their_own_and_the_recent_window_starts_another():
    m = months(date(2018, 4, 1), 93)          # April 2018 to December 2025
    found = series_periods(m, POLICY)
    got = [(m[p.start], p.reason.split(":")[0]) for p in found]
    assert got == [(date(2018, 4, 1), "start of the series"),
                   (date(2020, 3, 1), "a known break"),
                   (date(2021, 4, 1), "the first month after a known break (the pandemic)"),
                   (date(2023, 1, 1), "recent baseline")]   # December 2025 - 35 months


def test_a_start_near_the_recent_window_takes_its_place():
    m = months(date(2021, 4, 1), 57)          # April 2021 to December 2025: the window starts January 2023
    cover = ["old"] * 24 + ["new"] * 33        # April 2023, three months after the window start: near it
    found = series_periods(m, POLICY, coverage=cover)
    assert [m[p.start] for p in found] == [date(2021, 4, 1), date(2023, 4, 1)]
    assert "covers changed" in found[1].reason
    # far from it (15 months after), both start periods
    cover = ["old"] * 36 + ["new"] * 21
    assert [m[p.start] for p in series_periods(m, POLICY, coverage=cover)] == \
        [date(2021, 4, 1), date(2023, 1, 1), date(2024, 4, 1)]
    # a series that began within 12 months of the window keeps one period
    assert len(series_periods(months(date(2022, 6, 1), 43), POLICY)) == 1


def test_a_merger_and_the_analysts_rebase_replace_the_recent_window():
    m = months(date(2021, 4, 1), 57)
    found = series_periods(m, POLICY, mergers=[(date(2022, 4, 1), "TRUST B")],
                           rebases=[(date(2025, 6, 1), "new assessment unit")])
    assert [(m[p.start], p.reason) for p in found] == [
        (date(2021, 4, 1), "start of the series"), (date(2022, 4, 1), "a merger: TRUST B joined"),
        (date(2025, 6, 1), "rebased by the analyst: new assessment unit")]
    # a missing month: the period starts at the first month held on or after the rebase
    gappy = [d for d in m if d != date(2025, 6, 1)]
    found = series_periods(gappy, POLICY, rebases=[(date(2025, 6, 1), "x unit")])
    assert gappy[found[-1].start] == date(2025, 7, 1)


def test_a_break_for_other_measures_does_not_split_this_one():
    policy = POLICY.model_copy(update={"breaks": [POLICY.breaks[0].model_copy(update={"measures": ["rtt"]})]})
    m = months(date(2019, 4, 1), 30)
    assert len(series_periods(m, policy, measure="ae")) == 1
    assert len(series_periods(m, policy, measure="rtt")) == 3


def test_the_shipped_policy_reads_and_bad_documents_say_file_entry_and_field(tmp_path):
    shipped = load_policy()
    assert shipped.baseline_months >= shipped.min_baseline_months >= 20 and shipped.recent_months == 36
    bad = tmp_path / "spc_rebase.yaml"
    bad.write_text("rebases:\n  - org_code: RXL\n    measure: ae_4hr_pct\n    month: 2025-06-15\n    reason: x\n"
                   "  - org_code: RXL\n    measure: ae_4hr_pct\n    month: 2025-06-01\n", encoding="utf-8")
    with pytest.raises(BaselineConfigError) as e:
        load_rebases(bad)
    lines = str(e.value).splitlines()
    assert any(str(bad) in ln and "rebases[0] (RXL).month" in ln and "first day of a month" in ln for ln in lines)
    assert any("rebases[1] (RXL).reason" in ln and "required" in ln for ln in lines)
    assert load_rebases(tmp_path / "none.yaml") == []


def _db(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.sql("create schema s1_current_state")
    con.sql("create table s1_current_state.metric_catalogue as select 'up_pct' as metric_id, true as higher_is_better")
    con.sql("""create table s1_current_state.organisations as
               select 'RAA' as org_code, 'TRUST A' as org_name, null::varchar as successor_code,
                      null::date as close_date""")
    m = months(date(2022, 1, 1), 48)                   # January 2022 to December 2025
    values = [10.0, 12.0] * 12 + [20.0, 22.0] * 12     # a step up in January 2024
    frame = pl.DataFrame({"org_code": "RAA", "org_level": "provider", "current_org_code": "RAA",
                          "period_start": m, "period_grain": "month", "metric_id": "up_pct", "value": values,
                          "source": "s", "coverage": None}, schema_overrides={"coverage": pl.String})
    con.register("_rows", frame.to_arrow())
    con.sql("create table s1_current_state.metric_values as select * from _rows")
    con.unregister("_rows")
    return con


def test_build_with_an_analysts_rebase_gives_the_new_period_its_own_limits(tmp_path):
    con = _db(tmp_path / "w.duckdb")
    rebase = tmp_path / "spc_rebase.yaml"
    rebase.write_text("rebases:\n  - org_code: RAA\n    measure: up_pct\n    month: 2024-01-01\n"
                      "    reason: a new ward opened\n", encoding="utf-8")
    build_spc(con, pl.DataFrame({"org_code": ["RAA"], "metric_id": ["up_pct"], "target_value": [15.0]}),
              baselines=load_baselines(con, rebase_file=rebase))
    s = con.sql("select * from s2_triple_aim.spc_summary").pl().row(0, named=True)
    # the last period: 20, 22, ... 24 points; mean 21, every moving range 2: limits 21 -/+ 5.32
    assert (s["baseline_start"], s["baseline_end"]) == (date(2024, 1, 1), date(2025, 12, 1))
    assert s["mean"] == pytest.approx(21) and s["lpl"] == pytest.approx(15.68) and s["upl"] == pytest.approx(26.32)
    assert s["assurance_type"] == "consistent_pass" and s["n_periods"] == 2
    assert s["baseline_reason"] == "rebased by the analyst: a new ward opened"
    assert s["rebases"] == "January 2024: rebased by the analyst: a new ward opened"
    first = con.sql("""select mean, rebase_group, baseline_start, period_reason from s2_triple_aim.spc
                       where period_start = '2022-01-01'""").fetchone()
    assert first == (pytest.approx(11), 0, date(2022, 1, 1), "start of the series")
    # without the rebase the recent window (January 2023) starts the last period, spanning the step
    build_spc(con, None, baselines=load_baselines(con, rebase_file=tmp_path / "none.yaml"))
    s = con.sql("select baseline_start, baseline_end, mean from s2_triple_aim.spc_summary").fetchone()
    assert s == (date(2023, 1, 1), date(2024, 12, 1), pytest.approx(16))
    # an unknown organisation in the rebase file is named with its entry
    rebase.write_text("rebases:\n  - org_code: RZZ\n    measure: up_pct\n    month: 2024-01-01\n    reason: why\n",
                      encoding="utf-8")
    with pytest.raises(BaselineConfigError, match=r"rebases\[0\] \(RZZ\)\.org_code: unknown organisation code"):
        load_baselines(con, rebase_file=rebase)
    con.close()


def test_the_literal_nhsr_port_agrees_period_by_period_on_a_rebased_series():
    # NHSRplotthedots computes each rebase group on its own (group_by(rebase_group)); fix_after_n_points counts from
    # the group's first point. The port, run on each period's points, must give the table's types and limits.
    from ibp_pipeline.step2_triple_aim.spc import SpcSettings, spc_series
    y = [70.0, 71.5, 69.0, 72.0, 70.5, 68.0, 71.0, 73.0, 69.5, 70.0, 72.5, 71.0, 70.0, 69.0] + \
        [75.0, 76.0, 74.5, 77.0, 75.5, 73.0, 76.0, 78.0, 74.5, 75.0, 77.5, 76.0, 75.0, 74.0, 80.0, 81.0]
    r = spc_series(y, "increase", target=78.0, settings=SpcSettings(baseline_points=12), rebase_at=[14])
    a_labels, a_kinds, (_, a_lpl, a_upl) = _r_ptd(y[:14], "increase", fix=12)
    b_labels, b_kinds, (_, b_lpl, b_upl) = _r_ptd(y[14:], "increase", fix=12)
    assert list(r.point_type) == a_kinds + b_kinds
    assert list(r.special_cause_type) == a_labels + b_labels
    assert (r.lpl[0], r.upl[0], r.lpl[-1], r.upl[-1]) == pytest.approx((a_lpl, a_upl, b_lpl, b_upl))
    assert r.variation_type == b_kinds[-1] == "special_cause_improvement"
