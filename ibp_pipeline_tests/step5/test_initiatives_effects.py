"""Step 5: the initiatives catalogue (validation, learned rows) and the effects learned from the data."""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
import yaml

from ibp_pipeline.step5_impact import effects as E
from ibp_pipeline.step5_impact import initiatives as I



# ---- panel regression: known answers ---------------------------------------------------------------------------
def _panel(n_trusts: int = 60, n_months: int = 36, beta: float = -0.3, noise: float = 1.0, month_shocks: bool = True,
           seed: int = 1) -> pl.DataFrame:
    """Trust effects strongly correlated with occupancy (so pooled OLS is biased) and, optionally, month shocks that
    move occupancy and the outcome together (so only two-way effects recover beta)."""
    rng = np.random.default_rng(seed)
    alpha = rng.normal(0, 8, n_trusts)
    gamma = 3 * np.sin(np.arange(n_months) / 12 * 2 * np.pi) if month_shocks else np.zeros(n_months)
    rows = []
    for i in range(n_trusts):
        for t in range(n_months):
            occ = 90 + 0.5 * alpha[i] - 0.8 * gamma[t] + rng.normal(0, 2)
            y = 70 + alpha[i] + gamma[t] + beta * occ + rng.normal(0, noise)
            rows.append((f"T{i:02d}", f"2023-{t:02d}", occ, y))
    return pl.DataFrame(rows, schema=["org", "month", "occ", "y"], orient="row")


def test_two_way_fixed_effects_recover_a_known_coefficient():
    panel = _panel()
    fit = E.fit_panel_fe(panel, "y", ["occ"], "org", "month")
    assert fit.ci_low["occ"] < -0.3 < fit.ci_high["occ"]
    assert abs(fit.coefficient["occ"] + 0.3) < 0.05
    assert fit.n_obs == 60 * 36 and fit.n_groups == 60 and fit.df_inference == 59
    assert fit.ci80_low["occ"] > fit.ci_low["occ"] and fit.ci80_high["occ"] < fit.ci_high["occ"]
    # pooled OLS (no trust effects) is badly biased by the correlated trust effects: the fixed effects matter
    x = panel["occ"].to_numpy()
    pooled = np.polyfit(x, panel["y"].to_numpy(), 1)[0]
    assert pooled > 0.5


def test_trust_fixed_effects_are_exact_without_noise():
    panel = _panel(noise=0.0, month_shocks=False)
    fit = E.fit_panel_fe(panel, "y", ["occ"], "org")
    assert fit.coefficient["occ"] == pytest.approx(-0.3, abs=1e-10)
    assert fit.r2_within == pytest.approx(1.0, abs=1e-12)


def test_two_drivers_and_their_covariance():
    rng = np.random.default_rng(3)
    panel = _panel(month_shocks=False).with_columns(pl.Series("nctr", rng.normal(20, 5, 60 * 36)))
    panel = panel.with_columns(pl.col("y") + 0.1 * pl.col("nctr"))
    fit = E.fit_panel_fe(panel, "y", ["occ", "nctr"], "org")
    assert abs(fit.coefficient["nctr"] - 0.1) < 3 * fit.std_error["nctr"]
    assert abs(fit.coefficient["occ"] + 0.3) < 3 * fit.std_error["occ"]
    assert fit.covariance.shape == (2, 2) and fit.covariance[0, 0] == pytest.approx(fit.std_error["occ"] ** 2)


def test_driver_importance_is_seeded_and_ranks_the_real_driver_first():
    rng = np.random.default_rng(0)
    n = 600
    frame = pl.DataFrame({"g": np.repeat(np.arange(30), 20), "f1": rng.normal(size=n), "f2": rng.normal(size=n),
                          "f3": rng.normal(size=n)})
    frame = frame.with_columns((5 * pl.col("f1") + np.sin(pl.col("f2")) + pl.Series(rng.normal(0, 0.5, n)))
                               .alias("y"))
    a = E.driver_importance(frame, "y", ["f1", "f2", "f3"], "g", seed=7, n_splits=3, n_repeats=2)
    b = E.driver_importance(frame, "y", ["f1", "f2", "f3"], "g", seed=7, n_splits=3, n_repeats=2)
    assert a.mean == b.mean and a.r2_oos == b.r2_oos
    assert a.mean["f1"] > a.mean["f2"] > a.mean["f3"] - 0.02
    assert a.r2_oos > 0.8 and a.n_groups == 30


def _metric_rows(panel: pl.DataFrame) -> pl.DataFrame:
    """A hand-made s1_current_state.metric_values from a trust-month panel."""
    out = []
    for r in panel.iter_rows(named=True):
        for metric, value, den in (("ae_4hr_pct", r["y"], 5000.0), ("ga_bed_occupancy_pct", r["occ"], 500.0),
                                   ("ga_beds_available", 500.0, None), ("discharge_nctr_avg", r["nctr"], 30.0),
                                   ("ae_emergency_admissions", 1500.0, None)):
            out.append((r["org"], "provider", r["period_start"], "month", metric, value, None, den))
    return pl.DataFrame(out, schema=["org_code", "org_level", "period_start", "period_grain", "metric_id", "value",
                                     "numerator", "denominator"], orient="row")


def _small_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    rng = np.random.default_rng(5)
    panel = _panel(n_trusts=12, n_months=18, month_shocks=True, seed=5)
    months = sorted(panel["month"].unique().to_list())
    starts = {m: dt.date(2022, 4, 1) + dt.timedelta(days=31 * i) for i, m in enumerate(months)}
    panel = panel.with_columns(pl.col("month").replace_strict(starts, return_dtype=pl.Date).alias("period_start"),
                               pl.Series("nctr", rng.normal(100, 10, panel.height)))
    panel = panel.with_columns(pl.col("period_start").dt.truncate("1mo"))
    con = duckdb.connect(str(path))
    con.execute("create schema s1_current_state")
    frame = _metric_rows(panel)
    con.register("mv", frame.to_arrow())
    con.execute("create table s1_current_state.metric_values as select * from mv")
    return con


def test_build_effects_and_initiatives_on_a_small_warehouse(tmp_path):
    con = _small_warehouse(tmp_path / "w.duckdb")
    n = E.build_effects(con)
    got = con.sql("select relation_id, driver, coefficient, ci_low, ci_high, n_groups from s5_impact.effects").pl()
    assert n == got.height == 4 + len(E.ML_FEATURES)
    occ = got.filter((pl.col("relation_id") == "ae4hr_occupancy_twoway_fe")).row(0, named=True)
    assert occ["n_groups"] == 12 and occ["ci_low"] < -0.3 < occ["ci_high"]
    assert I.build_initiatives(con) > 0
    learned = con.sql("select initiative_id, effect_low, effect_high, use_for_simulation from s5_impact.initiatives "
                      "where source = 'learned'").pl()
    assert learned.height >= 1 and learned["use_for_simulation"].all()
    assert (learned["effect_low"] > 0).all()  # fewer occupied beds, better 4-hour performance


# ---- the catalogue ---------------------------------------------------------------------------------------------
def test_shipped_catalogue_covers_every_lever():
    cat = I.load_initiatives()
    assert {i.lever for i in cat.initiatives} == set(I.LEVERS)
    for item in cat.initiatives:
        assert item.cost.annual_equivalent > 0 and item.cost.basis
        assert all(e.low <= e.high for e in item.effects)
    beds = cat.by_id()["extra_ga_beds"]
    assert beds.cost.annual_equivalent == pytest.approx(1_460_000 + 2_500_000 / 30)


def _write(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load(I.CATALOGUE_PATH.read_text())
    mutate(raw)
    path = tmp_path / "initiatives.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _error(tmp_path: Path, mutate) -> str:
    with pytest.raises(I.InitiativesConfigError) as info:
        I.load_initiatives(_write(tmp_path, mutate))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_config_error_names_file_item_and_field(tmp_path):
    def low_above_high(raw):
        raw["initiatives"][2]["effects"][1]["low"] = 5
    msg = _error(tmp_path, low_above_high)
    assert msg.startswith("initiatives.yaml: initiatives[2] (virtual_ward_places).effects[1].high: must be >= low")

    def text_number(raw):
        raw["initiatives"][0]["effects"][0]["low"] = "eight"
    assert "initiatives[0] (extra_ga_beds).effects[0].low: must be a number, got 'eight'" in _error(tmp_path,
                                                                                                   text_number)

    def unknown_field(raw):
        raw["initiatives"][1]["cost"]["vat"] = 0.2
    assert "initiatives[1] (more_nursing_fte).cost.vat: unknown field" in _error(tmp_path, unknown_field)

    def bad_lever(raw):
        raw["initiatives"][3]["lever"] = "robots"
    assert "initiatives[3] (theatre_productivity).lever: must be 'beds', 'nursing_fte'" in _error(tmp_path, bad_lever)

    def missing_basis(raw):
        del raw["initiatives"][4]["cost"]["basis"]
    assert "initiatives[4] (demand_management).cost.basis: required field is missing" in _error(tmp_path,
                                                                                              missing_basis)

    def capital_without_life(raw):
        del raw["initiatives"][0]["cost"]["asset_life_years"]
    assert "initiatives[0] (extra_ga_beds).cost.asset_life_years: required when capital_gbp > 0" in _error(
        tmp_path, capital_without_life)

    def unknown_metric(raw):
        raw["initiatives"][5]["effects"][0]["metric_id"] = "happiness"
    assert "initiatives[5] (discharge_improvement).effects[0].metric_id: unknown metric id 'happiness'" in _error(
        tmp_path, unknown_metric)

    def duplicate(raw):
        raw["initiatives"][1]["initiative_id"] = "extra_ga_beds"
    assert "initiatives[1] (extra_ga_beds).initiative_id: duplicate" in _error(tmp_path, duplicate)

    def negative_ramp(raw):
        raw["initiatives"][0]["ramp_up_months"] = -1
    assert "initiatives[0] (extra_ga_beds).ramp_up_months: must be greater than or equal to 0" in _error(
        tmp_path, negative_ramp)


def test_config_error_for_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: '1'\ninitiatives: [\n")
    with pytest.raises(I.InitiativesConfigError, match=r"^bad.yaml: not valid YAML at line"):
        I.load_initiatives(bad)
    with pytest.raises(I.InitiativesConfigError, match="file not found"):
        I.load_initiatives(tmp_path / "nope.yaml")


# ---- learned rows ----------------------------------------------------------------------------------------------
def _effects(coef: float, se: float, ci_low: float, ci_high: float, nctr: tuple[float, float, float, float] | None
             = None) -> pl.DataFrame:
    rows = [dict(relation_id=I.OCCUPANCY_RELATION, driver="ga_bed_occupancy_pct", coefficient=coef, std_error=se,
                 ci_low=ci_low, ci_high=ci_high, n_obs=1000, n_groups=100, covariance_with_other=None)]
    if nctr is not None:
        for d, (c, s, lo, hi) in (("ga_bed_occupancy_pct", (coef, se, ci_low, ci_high)), ("nctr_per_100_beds", nctr)):
            rows.append(dict(relation_id=I.OCCUPANCY_NCTR_RELATION, driver=d, coefficient=c, std_error=s, ci_low=lo,
                             ci_high=hi, n_obs=900, n_groups=90, covariance_with_other=0.0))
    return pl.DataFrame(rows)


def test_learned_effect_matches_the_closed_form_when_certain(tmp_path):
    path = _write(tmp_path, lambda raw: raw["initiatives"][0]["effects"][0].update(low=10, high=10))
    cat = I.load_initiatives(path)
    frame = I.initiatives_frame(cat, _effects(-0.2, 1e-12, -0.2, -0.2))
    beds = frame.filter(pl.col("initiative_id") == "extra_ga_beds")
    learned = beds.filter(pl.col("source") == "learned").row(0, named=True)
    occ_change = 100 * (0.93 * 700) / 710 - 93  # same occupied beds over 710 beds
    assert learned["effect_low"] == pytest.approx(-0.2 * occ_change, rel=1e-6)
    assert learned["effect_high"] == pytest.approx(-0.2 * occ_change, rel=1e-6)
    assert learned["use_for_simulation"] and learned["effect_metric_id"] == "ae_4hr_pct"
    configured = beds.filter((pl.col("source") == "config") & (pl.col("effect_metric_id") == "ae_4hr_pct"))
    assert configured.height == 1 and not configured["use_for_simulation"][0]
    # exactly one row used per initiative x metric
    used = frame.filter(pl.col("use_for_simulation")).group_by("initiative_id", "effect_metric_id").len()
    assert (used["len"] == 1).all()
    # initiatives without a bed or delay effect get no learned row
    theatre = frame.filter(pl.col("initiative_id") == "theatre_productivity")
    assert theatre.filter(pl.col("source") == "learned").is_empty()


def test_learned_rows_are_seeded_and_skip_insignificant_relations():
    cat = I.load_initiatives()
    eff = _effects(-0.15, 0.06, -0.27, -0.03, nctr=(0.02, 0.03, -0.04, 0.08))
    a, b = I.initiatives_frame(cat, eff), I.initiatives_frame(cat, eff)
    assert a.equals(b)
    discharge = a.filter((pl.col("initiative_id") == "discharge_improvement") & (pl.col("source") == "learned"))
    assert discharge.height == 1 and discharge["relation_id"][0] == I.OCCUPANCY_RELATION
    assert "Left out as not significant: nctr_per_100_beds" in discharge["evidence"][0]
    none_usable = I.initiatives_frame(cat, _effects(-0.1, 0.08, -0.26, 0.06))
    assert none_usable.filter(pl.col("source") == "learned").is_empty()
    assert none_usable["use_for_simulation"].all()
    without = I.initiatives_frame(cat, None)
    assert set(without["source"].unique()) == {"config"}


# ---- the real warehouse ------------------------------------------------------------------------------------
def test_effects_and_initiatives_on_the_real_warehouse(real_warehouse, tmp_path):
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(real_warehouse, db)
    con = duckdb.connect(str(db))
    assert E.build_effects(con) == 4 + len(E.ML_FEATURES)
    fe = con.sql("select * from s5_impact.effects where relation_id = 'ae4hr_occupancy_twoway_fe'").pl()
    fe = fe.row(0, named=True)
    assert fe["n_groups"] > 100 and fe["n_obs"] > 4000
    assert fe["coefficient"] < 0 and fe["ci_low"] < fe["coefficient"] < fe["ci_high"]
    ml = con.sql("select * from s5_impact.effects where relation_id = 'ae4hr_gbm_permutation_importance'").pl()
    assert ml.height == len(E.ML_FEATURES) and ml["r2_within"].is_finite().all()
    assert I.build_initiatives(con) >= 12
    used = con.sql("select initiative_id, effect_metric_id, count(*) n from s5_impact.initiatives "
                   "where use_for_simulation group by all").pl()
    assert (used["n"] == 1).all() and used["initiative_id"].n_unique() == 6
