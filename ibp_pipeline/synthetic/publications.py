"""Turn the synthetic health system (model.py) into files in the layouts the pipeline's registry reads
(step1_current_state/sources.py): same folders, file-name patterns and column headers as the real publications.

Each builder yields OutFile objects (a polars frame plus where it goes); generator.py injects bad rows, writes
them and keeps the manifest. Monthly publications (A&E, RTT, DM01) are one file per month, named as NHS England
names them, so one new month is one new file; compiled series (cancer, workforce, beds, discharge, ...) are one
gzip-compressed file each, as in the bundled data.

Counts are integers drawn around the model's expected values (Poisson and binomial draws), and every total,
percentage and part-of-whole in a row is computed from the same counts, so numerators never exceed their
denominators and a TOTAL row always equals the sum of its providers.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Iterator

import numpy as np
import polars as pl

from ..step1_current_state.sources import AE_MEASURES, DM01_BANDS, RTT_BANDS
from .model import (S_AE, S_CANCER, S_DISCHARGE, S_DM01, S_ESTATES, S_FLOWS, S_KH03, S_NCC, S_PEERS, S_POP,
                    S_RTT, S_VW, S_WORKFORCE, VW_PER_100K, Latent, Org, Universe, days_in, month_date, month_end,
                    rng_for, trajectory)


@dataclass
class OutFile:
    source: str  # registry name (SourceSpec.name)
    folder: str  # folder under sources/ ('@reference' = the reference folder)
    name: str
    frame: pl.DataFrame
    gzip: bool = True
    inject: bool = True  # data rows may get injected bad rows (never the organisation reference)
    key_month: int = 0  # absolute month for per-month streams (0 = compiled file)
    total_code: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def file_name(self) -> str:
        return self.name + (".gz" if self.gzip else "")


MONTH = calendar.month_name
MON = calendar.month_abbr


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def _group_sum(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Merged trusts: sum the base units' rows under the code they are published under that month."""
    return frame.group_by(keys, maintain_order=True).agg(pl.exclude(keys).sum())


def _nan_to_null(frame: pl.DataFrame, cols: list[str]) -> pl.DataFrame:
    return frame.with_columns([pl.col(c).fill_nan(None) for c in cols])


# ---- A&E: official monthly provider file (Monthly-AE-<Month>-<Year>.csv) -----------------------------------
def ae_files(u: Universe, L: Latent, window: list[int]) -> Iterator[OutFile]:
    base = u.base
    orgs = u.by_code()
    has = np.array([bool(o.services & {"ae_t1", "ae_t2", "ae_t3"}) for o in base])
    idx = np.flatnonzero(has)
    S = L.series
    for m in window:
        j = L.col(m)
        r = rng_for(u.seed, S_AE, m)
        t1, t2, t3 = (r.poisson(S[k][idx, j]) for k in ("t1", "t2", "t3"))
        b1, b2, b3 = r.poisson(S["t1"][idx, j] * 0.023), r.poisson(S["t2"][idx, j] * 0.014), \
            r.poisson(S["t3"][idx, j] * 0.06)
        p1, p3 = S["t1_pct"][idx, j] / 100, S["t3_pct"][idx, j] / 100
        o1, o2, o3 = r.binomial(t1, 1 - p1), r.binomial(t2, 0.04), r.binomial(t3, 1 - p3)
        ob1, ob2, ob3 = r.binomial(b1, np.clip((1 - p1) * 0.7, 0, 1)), r.binomial(b2, 0.02), r.binomial(b3, 0.012)
        adm1 = r.binomial(t1, S["admit"][idx, j])
        adm2, adm3 = r.binomial(t2, 0.03), r.binomial(t3, 0.006)
        dta12 = r.binomial(adm1, S["dta12"][idx, j])
        dta4 = r.binomial(adm1 - dta12, np.clip(0.22 + 2 * S["dta12"][idx, j], 0, 0.8))
        other_adm = r.poisson(adm1 * 0.42 + 30 * (t1 > 0))
        values = [t1, t2, t3, b1, b2, b3, o1, o2, o3, ob1, ob2, ob3, dta4, dta12, adm1, adm2, adm3, other_adm]
        codes = np.array(u.reporting_codes(m))[idx]
        frame = pl.DataFrame({"Org Code": codes, **{h: v.astype(np.int64) for h, v in zip(AE_MEASURES, values)}})
        frame = _group_sum(frame, ["Org Code"]).sort("Org Code")
        d = month_date(m)
        period = f"MSitAE-{MONTH[d.month].upper()}-{d.year}"
        info = [orgs[c] for c in frame["Org Code"]]
        frame = frame.select(
            pl.lit(period).alias("Period"), pl.col("Org Code"),
            pl.Series("Parent Org", [f"NHS ENGLAND {u.regions[o.region].display.upper()}" for o in info]),
            pl.Series("Org name", [o.name.upper() for o in info]), *AE_MEASURES)
        total = frame.select(pl.lit(period).alias("Period"), pl.lit("TOTAL").alias("Org Code"),
                             pl.lit("-").alias("Parent Org"), pl.lit("TOTAL").alias("Org name"),
                             *[pl.col(h).sum() for h in AE_MEASURES])
        yield OutFile("ae_monthly_official", "ae_monthly_provider_official",
                      f"Monthly-AE-{MONTH[d.month]}-{d.year}.csv",
                      pl.concat([total, frame]), gzip=False, key_month=m, total_code="TOTAL")


# ---- RTT incomplete pathways by provider and treatment function (Incomplete-Provider-<Mon><YY>.csv) -----------
TREATMENT_FUNCTIONS = (  # code, name, 18-week offset (points), relative size
    ("C_100", "General Surgery Service", -2, 1.0), ("C_101", "Urology Service", -1, 1.0),
    ("C_110", "Trauma and Orthopaedic Service", -6, 1.5), ("C_120", "Ear Nose and Throat Service", -5, 1.2),
    ("C_130", "Ophthalmology Service", -1, 1.4), ("C_140", "Oral Surgery Service", -5, 0.6),
    ("C_150", "Neurosurgical Service", -3, 0.15), ("C_160", "Plastic Surgery Service", -3, 0.3),
    ("C_170", "Cardiothoracic Surgery Service", 0, 0.12), ("C_300", "General Internal Medicine Service", 3, 0.2),
    ("C_301", "Gastroenterology Service", -2, 0.6), ("C_320", "Cardiology Service", 3, 0.7),
    ("C_330", "Dermatology Service", 1, 0.8), ("C_340", "Respiratory Medicine Service", 2, 0.35),
    ("C_400", "Neurology Service", -1, 0.4), ("C_410", "Rheumatology Service", 1, 0.3),
    ("C_430", "Elderly Medicine Service", 5, 0.1), ("C_502", "Gynaecology Service", -4, 1.0),
    ("X02", "Other - Medical Services", 3, 0.5), ("X03", "Other - Mental Health Services", 4, 0.05),
    ("X04", "Other - Paediatric Services", 1, 0.4), ("X05", "Other - Surgical Services", -1, 0.3),
    ("X06", "Other - Other Services", 2, 0.3))
_TF_BY_KIND = {"mental_health": ("X03", "X06"), "community": ("X02", "X04", "C_410", "X06")}


def _decay(n: int, scale: float) -> np.ndarray:
    w = np.exp(-np.arange(n) / scale)
    return w / w.sum()


_S104 = np.append(_decay(52, 9.0) * 0.995, 0.005)  # 52..103 weeks, then 104+
_R = np.linspace(0.75, 1.3, 1101)  # geometric ratios band to band


def _geometric(mass: np.ndarray, n: int, edge: np.ndarray, at_end: bool) -> np.ndarray:
    """Per row, `mass` spread over n weekly bands as a geometric sequence whose last (at_end) or first band
    equals `edge` where it can (so the wait distribution has no step where one segment meets the next)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        first = np.where(np.isclose(_R, 1), 1 / n, (1 - _R) / (1 - _R ** n))
        grid = first * _R ** (n - 1) if at_end else first  # share of the edge band for each ratio
        want = np.where(mass > 0, edge / mass, 1 / n)
    order = np.argsort(grid)
    r = np.interp(want, grid[order], _R[order])
    w = r[:, None] ** np.arange(n)[None, :]
    return mass[:, None] * w / w.sum(axis=1, keepdims=True)


def _rtt_shape(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Share of each of the 105 weekly bands: p within 18 weeks, q over 52 weeks, continuous at 18 and 52."""
    mid = 1 - p - q
    tail = q[:, None] * _S104[None, :]
    s52 = _geometric(mid, 34, tail[:, 0], at_end=True)
    s18 = _geometric(p, 18, s52[:, 0], at_end=True)
    return np.hstack([s18, s52, tail])


def rtt_grid(u: Universe) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fixed (unit, treatment function) rows with each row's share of its unit's list: the same every month."""
    units, tfs, shares = [], [], []
    for i, o in enumerate(u.base):
        if "rtt" not in o.services:
            continue
        r = rng_for(u.seed, S_RTT, o.serial)
        if o.kind in _TF_BY_KIND:
            allowed = [k for k, tf in enumerate(TREATMENT_FUNCTIONS) if tf[0] in _TF_BY_KIND[o.kind]]
        elif o.kind == "specialist":
            allowed = sorted(r.choice(len(TREATMENT_FUNCTIONS), size=7, replace=False).tolist())
        else:
            allowed = list(range(len(TREATMENT_FUNCTIONS)))
        w = np.array([TREATMENT_FUNCTIONS[k][3] for k in allowed]) * r.lognormal(0, 0.35, len(allowed))
        units += [i] * len(allowed)
        tfs += allowed
        shares += list(w / w.sum())
    return np.array(units), np.array(tfs), np.array(shares)


def _quantile_weeks(counts: np.ndarray, q: float) -> np.ndarray:
    cum = counts.cumsum(axis=1)
    total = cum[:, -1]
    target = q * total
    k = np.argmax(cum >= target[:, None], axis=1)
    prev = np.where(k > 0, cum[np.arange(len(k)), np.maximum(k - 1, 0)], 0)
    here = counts[np.arange(len(k)), k]
    with np.errstate(invalid="ignore", divide="ignore"):
        wk = k + np.where(here > 0, (target - prev) / here, 0.0)
    return np.where(total > 0, np.round(wk, 1), np.nan)


def rtt_files(u: Universe, L: Latent, window: list[int]) -> Iterator[OutFile]:
    orgs = u.by_code()
    unit, tf, share = rtt_grid(u)
    off = np.array([TREATMENT_FUNCTIONS[k][2] for k in tf], dtype=float)
    S = L.series
    for m in window:
        j = L.col(m)
        r = rng_for(u.seed, S_RTT, 10_000 + m)
        n = S["rtt_list"][unit, j] * share
        p = np.clip(S["rtt18"][unit, j] + off, 20, 99.5) / 100
        q = np.minimum(S["rtt52"][unit, j] / 100 * np.clip(1 - off / 15, 0.3, 2.0), (1 - p) * 0.9)
        lam = _rtt_shape(p, q) * n[:, None]
        counts = r.poisson(lam).astype(np.float64)
        codes = np.array(u.reporting_codes(m))[unit]
        frame = pl.DataFrame({"provider_code": codes, "tf": tf})
        frame = frame.hstack(pl.DataFrame(counts, schema=list(RTT_BANDS), orient="row"))
        frame = _group_sum(frame, ["provider_code", "tf"])
        totals = _group_sum(frame.drop("tf"), ["provider_code"]).with_columns(pl.lit(-1, pl.Int64).alias("tf"))
        frame = pl.concat([frame, totals.select(frame.columns)]).sort("provider_code", "tf")
        c = frame.select(RTT_BANDS).to_numpy()
        total = c.sum(axis=1)
        within = c[:, :18].sum(axis=1)
        d = month_date(m)
        info = [orgs[x] for x in frame["provider_code"]]
        tf_codes = ["C_999" if k < 0 else TREATMENT_FUNCTIONS[k][0] for k in frame["tf"]]
        tf_names = ["Total" if k < 0 else TREATMENT_FUNCTIONS[k][1] for k in frame["tf"]]
        with np.errstate(invalid="ignore", divide="ignore"):
            pct = np.where(total > 0, np.round(within / total, 3), np.nan)
        out = pl.DataFrame({
            "period_month": [d.isoformat()] * frame.height, "region_code": [u.regions[o.region].code for o in info],
            "provider_code": frame["provider_code"], "provider_name": [o.name.upper() for o in info],
            "treatment_function_code": tf_codes, "treatment_function": tf_names})
        bands = pl.DataFrame(np.where(c > 0, c, np.nan), schema=list(RTT_BANDS), orient="row")
        extra = pl.DataFrame({
            "total_incomplete": total, "total_within_18wks": within, "pct_within_18wks": pct,
            "median_wait_wks": _quantile_weeks(c, 0.5), "p92_wait_wks": _quantile_weeks(c, 0.92),
            "total_52plus_wks": c[:, 52:].sum(axis=1), "total_78plus_wks": c[:, 78:].sum(axis=1),
            "total_65plus_wks": c[:, 65:].sum(axis=1), "% 52 plus weeks": [None] * frame.height},
            schema_overrides={"% 52 plus weeks": pl.Float64})
        out = _nan_to_null(out.hstack(bands).hstack(extra),
                           list(RTT_BANDS) + ["pct_within_18wks", "median_wait_wks", "p92_wait_wks"])
        yield OutFile("rtt_incomplete", "rtt_incomplete_provider_specialty_monthly",
                      f"Incomplete-Provider-{MON[d.month]}{d.year % 100:02d}.csv", out, key_month=m)


# ---- DM01 diagnostics (Monthly-Diagnostics-Web-File-Provider-<Month>-<Year>.csv) ------------------------------
DM01_TESTS = (  # id, name, share of the list, 6-week multiplier, planned, unscheduled (per list patient)
    (1, "Magnetic Resonance Imaging", 0.13, 0.8, 0.15, 0.15), (2, "Computed Tomography", 0.09, 0.5, 0.2, 0.9),
    (3, "Non-obstetric Ultrasound", 0.40, 0.9, 0.05, 0.2), (4, "Barium Enema", 0.002, 1.0, 0.0, 0.01),
    (5, "DEXA Scan", 0.03, 1.2, 0.02, 0.0), (6, "Audiology - Audiology Assessments", 0.06, 1.5, 0.05, 0.01),
    (7, "Cardiology - Echocardiography", 0.08, 1.3, 0.05, 0.3), (8, "Cardiology - Electrophysiology", 0.002, 1.0,
                                                                  0.1, 0.05),
    (9, "Neurophysiology - Peripheral Neurophysiology", 0.03, 1.2, 0.02, 0.02),
    (10, "Respiratory physiology - Sleep Studies", 0.02, 1.6, 0.02, 0.01),
    (11, "Urodynamics - Pressures & Flows", 0.01, 1.5, 0.02, 0.0), (12, "Colonoscopy", 0.04, 1.4, 0.3, 0.1),
    (13, "Flexi Sigmoidoscopy", 0.015, 1.3, 0.2, 0.05), (14, "Cystoscopy", 0.015, 1.0, 0.3, 0.02),
    (15, "Gastroscopy", 0.05, 1.4, 0.25, 0.15))
_DM01_BY_KIND = {"community": (3, 5, 6, 7), "independent": (1, 2, 3, 12, 13, 15)}


def dm01_files(u: Universe, L: Latent, window: list[int]) -> Iterator[OutFile]:
    orgs = u.by_code()
    units, tests, shares = [], [], []
    for i, o in enumerate(u.base):
        if "dm01" not in o.services:
            continue
        r = rng_for(u.seed, S_DM01, o.serial)
        if o.kind in _DM01_BY_KIND:
            allowed = [k for k, t in enumerate(DM01_TESTS) if t[0] in _DM01_BY_KIND[o.kind]]
        elif o.kind == "specialist":
            allowed = sorted(r.choice(len(DM01_TESTS), size=6, replace=False).tolist())
        else:
            allowed = list(range(len(DM01_TESTS)))
        w = np.array([DM01_TESTS[k][2] for k in allowed]) * r.lognormal(0, 0.3, len(allowed))
        units += [i] * len(allowed)
        tests += allowed
        shares += list(w / w.sum())
    unit, test, share = np.array(units), np.array(tests), np.array(shares)
    mult = np.array([DM01_TESTS[k][3] for k in test])
    planned = np.array([DM01_TESTS[k][4] for k in test])
    unsched = np.array([DM01_TESTS[k][5] for k in test])
    S = L.series
    band_cols = list(DM01_BANDS)
    for m in window:
        j = L.col(m)
        r = rng_for(u.seed, S_DM01, 10_000 + m)
        n = S["dm01_list"][unit, j] * share
        p6 = np.clip(S["dm01_6"][unit, j] * mult, 0.1, 95) / 100
        r13 = S["dm01_13"][unit, j]
        six_twelve = _geometric(p6 * (1 - r13), 7, p6 * r13 / 4, at_end=True)
        lam = np.hstack([_geometric(1 - p6, 6, six_twelve[:, 0], at_end=True), six_twelve, (p6 * r13)[:, None]]) \
            * n[:, None]
        counts = r.poisson(lam)
        act = np.column_stack([r.poisson(n * planned), r.poisson(n * unsched),
                               r.poisson(n * 0.95 * S["covid_el"][unit, j])])
        codes = np.array(u.reporting_codes(m))[unit]
        frame = pl.DataFrame({"provider_code": codes, "test": test}).hstack(
            pl.DataFrame(np.hstack([counts, act]), schema=band_cols + ["activity_planned", "activity_unscheduled",
                                                                       "activity_waiting_list"], orient="row"))
        frame = _group_sum(frame, ["provider_code", "test"])
        totals = _group_sum(frame.drop("test"), ["provider_code"]).with_columns(pl.lit(15, pl.Int64).alias("test"))
        frame = pl.concat([frame, totals.select(frame.columns)]).sort("provider_code", "test")
        c = frame.select(band_cols).to_numpy()
        total, six, thirteen = c.sum(axis=1), c[:, 6:].sum(axis=1), c[:, 13]
        d = month_date(m)
        name = f"Monthly-Diagnostics-Web-File-Provider-{MONTH[d.month]}-{d.year}.csv"
        info = [orgs[x] for x in frame["provider_code"]]
        test_id = [16 if k == 15 else DM01_TESTS[k][0] for k in frame["test"]]
        test_name = ["Total" if k == 15 else DM01_TESTS[k][1] for k in frame["test"]]
        with np.errstate(invalid="ignore", divide="ignore"):
            pct = np.where(total > 0, six / total, np.nan)
        out = pl.DataFrame({
            "period_month": [d.isoformat()] * frame.height, "region_code": [u.regions[o.region].code for o in info],
            "region_name": [f"{u.regions[o.region].display} Commissioning Region" for o in info],
            "provider_code": frame["provider_code"], "provider_name": [o.name for o in info],
            "diagnostic_id": test_id, "diagnostic_test": test_name, "total_waiting": total,
            "waiting_6plus_wks": six, "waiting_13plus_wks": thirteen, "pct_waiting_6plus_wks": pct})
        out = _nan_to_null(out, ["pct_waiting_6plus_wks"]).hstack(frame.select(band_cols).cast(pl.Int64)).hstack(
            frame.select("activity_planned", "activity_unscheduled", "activity_waiting_list").cast(pl.Int64))
        out = out.with_columns(pl.lit(name).alias("source_file"))
        yield OutFile("dm01_diagnostics", "diagnostics_dm01_provider_monthly", name, out, key_month=m)


# ---- cancer waiting times (cwt_provider_monthly.csv) ------------------------------------------------------------
_CANCER_TYPES = (("Breast", 0.22, 2), ("Lower Gastrointestinal", 0.12, -3), ("Lung", 0.10, -4), ("Skin", 0.14, 4),
                 ("Urological - Prostate", 0.12, -8), ("Gynaecological", 0.07, -6), ("Head & Neck", 0.06, -5),
                 ("Haematological - Lymphoma", 0.04, -2), ("Upper Gastrointestinal - Oesophagus & Stomach", 0.04, -5),
                 ("Other (a)", 0.09, 0))
_SUSPECTED = (("Suspected breast cancer", 0.17, 5), ("Suspected lower gastrointestinal cancer", 0.22, -8),
              ("Suspected skin cancer", 0.20, 6),
              ("Suspected urological malignancies (excluding testicular)", 0.09, -10),
              ("Suspected gynaecological cancer", 0.11, -6), ("Suspected lung cancer", 0.04, 0),
              ("Suspected head & neck cancer", 0.08, -3), ("Suspected upper gastrointestinal cancer", 0.06, -4),
              ("Suspected cancer - non-specific symptoms", 0.02, -5), ("Suspected haematological malignancies "
                                                                       "(excluding acute leukaemia)", 0.01, 2))
_MODALITIES = (("Surgery", 0.45, -2), ("Anti-cancer drug regimen", 0.35, 3), ("Radiotherapy", 0.15, 1),
               ("Other", 0.05, 0))


def _cancer_rows() -> list[tuple[str, str, str | None, str, float, str, float]]:
    """(standard, stage/route, modality, cancer type, share of the standard's volume, measure, offset)."""
    rows = []
    for t, s, off in _SUSPECTED:
        rows.append(("28-day FDS", "URGENT SUSPECTED CANCER", None, t, s * 0.93, "fds", off))
    for t in ("Suspected breast cancer", "Suspected lower gastrointestinal cancer"):
        rows.append(("28-day FDS", "NATIONAL SCREENING PROGRAMME", None, t, 0.025, "fds", -10))
    rows.append(("28-day FDS", "BREAST SYMPTOMATIC, CANCER NOT SUSPECTED", None,
                 "Exhibited (non-cancer) breast symptoms - cancer not initially suspected", 0.02, "fds", 8))
    for route, part in (("First Treatment", 0.7), ("Subsequent Treatment", 0.3)):
        rows += [("31-day Combined", route, "ALL MODALITIES", t, s * part, "c31", off / 4)
                 for t, s, off in _CANCER_TYPES]
        rows += [("31-day Combined", route, m, "ALL CANCERS", s * part, "c31", off) for m, s, off in _MODALITIES]
    for route, part in (("Urgent Suspected Cancer", 0.78), ("Consultant Upgrade", 0.14), ("Screening", 0.08)):
        types = _CANCER_TYPES if route != "Screening" else (("Breast", 0.6, 5), ("Lower Gastrointestinal", 0.4, -5))
        rows += [("62-day Combined", route, "ALL MODALITIES", t, s * part, "c62", off) for t, s, off in types]
        rows += [("62-day Combined", route, m, "ALL CANCERS", s * part, "c62", off) for m, s, off in _MODALITIES]
    return rows


def cancer_file(u: Universe, L: Latent, window: list[int]) -> Iterator[OutFile]:
    rows = _cancer_rows()
    units = [i for i, o in enumerate(u.base) if "cancer" in o.services]
    per_std = {"28-day FDS": 1.0, "31-day Combined": 0.13, "62-day Combined": 0.075}
    ui = np.repeat(units, len(rows))
    ri = np.tile(np.arange(len(rows)), len(units))
    frac = np.array([rows[k][4] * per_std[rows[k][0]] for k in ri])
    off = np.array([rows[k][6] for k in ri])
    measure = np.array([rows[k][5] for k in ri])
    S = L.series
    frames = []
    for m in window:
        j = L.col(m)
        r = rng_for(u.seed, S_CANCER, m)
        total = r.poisson(S["cancer_vol"][ui, j] * frac)
        perf = np.select([measure == "fds", measure == "c31"], [S["fds"][ui, j], S["c31"][ui, j]], S["c62"][ui, j])
        within = r.binomial(total, np.clip(perf + off, 5, 100) / 100)
        codes = np.array(u.reporting_codes(m))[ui]
        f = pl.DataFrame({"provider_code": codes, "row": ri, "total_treated": total.astype(np.float64),
                          "within_standard": within.astype(np.float64)})
        f = _group_sum(f, ["provider_code", "row"]).filter(pl.col("total_treated") > 0)
        frames.append(f.with_columns(pl.lit(month_date(m).isoformat()).alias("period_month")))
    f = pl.concat(frames)
    rix = f["row"].to_numpy()
    out = pl.DataFrame({
        "period_month": f["period_month"], "standard": [rows[k][0] for k in rix], "provider_code": f["provider_code"],
        "stage_route": [rows[k][1] for k in rix], "treatment_modality": [rows[k][2] for k in rix],
        "cancer_type": [rows[k][3] for k in rix], "total_treated": f["total_treated"],
        "within_standard": f["within_standard"], "breaches": f["total_treated"] - f["within_standard"]})
    yield OutFile("cancer_waiting_times", "cancer_waiting_times_provider_monthly", "cwt_provider_monthly.csv", out)


# ---- workforce by staff group (workforce_org_staff_group_monthly.csv) -------------------------------------------
_DOCTORS = ("Consultant", "Associate Specialist", "Specialty Doctor", "Staff Grade", "Specialty Registrar",
            "Core Training", "Foundation Doctor Year 2", "Foundation Doctor Year 1",
            "Hospital Practitioner / Clinical Assistant", "Other and Local HCHS Doctor Grades")
_DOCTOR_MIX = (0.38, 0.01, 0.11, 0.005, 0.28, 0.08, 0.045, 0.045, 0.005, 0.03)
_LEAF_SHARES = {  # kind -> (doctors, nurses, midwives, ambulance, ST&T, support DNM, support amb, support ST&T,
    #                      central, hotel, senior managers, managers, other/unknown)
    "acute": (0.18, 0.30, 0.025, 0, 0.14, 0.17, 0, 0.04, 0.08, 0.05, 0.01, 0.03, 0.002),
    "specialist": (0.20, 0.32, 0.0, 0, 0.17, 0.13, 0, 0.05, 0.08, 0.03, 0.01, 0.03, 0.002),
    "mental_health": (0.07, 0.32, 0.0, 0, 0.17, 0.22, 0, 0.03, 0.10, 0.03, 0.01, 0.05, 0.002),
    "community": (0.03, 0.35, 0.01, 0, 0.22, 0.18, 0, 0.05, 0.10, 0.03, 0.01, 0.04, 0.002),
    "ambulance": (0.001, 0.01, 0.0, 0.38, 0.01, 0.0, 0.36, 0.0, 0.14, 0.04, 0.01, 0.05, 0.002),
}
_LEAVES = ("Nurses & health visitors", "Midwives", "Ambulance staff", "Scientific, therapeutic & technical staff",
           "Support to doctors, nurses & midwives", "Support to ambulance staff", "Support to ST&T staff",
           "Central functions", "Hotel, property & estates", "Senior managers", "Managers",
           "Other staff or those with unknown classification")
_HC_RATIO = {"Consultant": 1.06, "Nurses & health visitors": 1.14, "Midwives": 1.25, "Ambulance staff": 1.06,
             "Support to doctors, nurses & midwives": 1.22, "Hotel, property & estates": 1.3}


def workforce_file(u: Universe, L: Latent, window: list[int]) -> Iterator[OutFile]:
    orgs = u.by_code()
    units = [i for i, o in enumerate(u.base) if "workforce" in o.services]
    groups = list(_DOCTORS) + list(_LEAVES)
    share = np.zeros((len(units), len(groups)))
    for a, i in enumerate(units):
        o = u.base[i]
        s = _LEAF_SHARES[o.kind]
        share[a] = [s[0] * d for d in _DOCTOR_MIX] + list(s[1:])
        share[a] *= rng_for(u.seed, S_WORKFORCE, o.serial).lognormal(0, 0.1, len(groups))
        share[a] /= share[a].sum()
    S = L.series
    ui = np.array(units)
    frames = []
    for m in window:
        j = L.col(m)
        r = rng_for(u.seed, S_WORKFORCE, 10_000 + m)
        fte = S["wf"][ui, j][:, None] * share * r.lognormal(0, 0.004, share.shape)
        codes = np.array(u.reporting_codes(m))[ui]
        f = pl.DataFrame({"org_code": codes}).hstack(pl.DataFrame(fte, schema=groups, orient="row"))
        f = _group_sum(f, ["org_code"])
        g = {k: f[k].to_numpy() for k in groups}
        doctors = sum(g[k] for k in _DOCTORS)
        pqc = doctors + g["Nurses & health visitors"] + g["Midwives"] + g["Ambulance staff"] + \
            g["Scientific, therapeutic & technical staff"]
        support = g["Support to doctors, nurses & midwives"] + g["Support to ambulance staff"] + \
            g["Support to ST&T staff"]
        infra = g["Central functions"] + g["Hotel, property & estates"] + g["Senior managers"] + g["Managers"]
        g.update({"HCHS Doctors": doctors, "Professionally qualified clinical staff": pqc,
                  "Support to clinical staff": support, "NHS infrastructure support": infra,
                  "Total": pqc + support + infra + g["Other staff or those with unknown classification"]})
        long = pl.DataFrame({"org_code": f["org_code"], **{k: np.round(v, 2) for k, v in g.items()}}).unpivot(
            index="org_code", variable_name="staff_group", value_name="FTE").filter(pl.col("FTE") > 0)
        ratio = pl.DataFrame({"staff_group": list(g), "_hc": [_HC_RATIO.get(k, 1.12) for k in g]})
        long = long.join(ratio, on="staff_group").with_columns((pl.col("FTE") * pl.col("_hc")).round(0).alias("HC"))
        long = long.drop("_hc").unpivot(index=["org_code", "staff_group"], variable_name="measure",
                                        value_name="value")
        frames.append(long.with_columns(pl.lit(month_date(m).isoformat()).alias("period_month")))
    f = pl.concat(frames)
    codes = f["org_code"].unique().to_list()
    info = pl.DataFrame({
        "org_code": codes, "region_code": [u.regions[orgs[c].region].code for c in codes],
        "region_name": [u.regions[orgs[c].region].display for c in codes],
        "ics_code": [u.icbs[orgs[c].icb].code for c in codes], "ics_name": [u.icbs[orgs[c].icb].short for c in codes],
        "org_name": ["SYNTHETIC " + orgs[c].name[10:].title().replace("Nhs", "NHS") for c in codes]})
    out = f.join(info, on="org_code", how="left").select(
        "period_month", "measure", "region_code", "region_name", "ics_code", "ics_name", "org_name", "org_code",
        "staff_group", "value").sort("period_month", "org_code", "measure", "staff_group")
    yield OutFile("workforce_staff_group", "workforce_staff_group_org_monthly",
                  "workforce_org_staff_group_monthly.csv", out)


# ---- G&A and critical care beds, monthly (ga_critical_care_beds_trust_monthly.csv) ------------------------------
_BED_COLS = ("general_acute_beds", "adult_general_acute_beds", "paediatric_general_acute_beds",
             "adult_critical_care_beds", "paediatric_intensive_cared_beds", "neonatal_intensive_care_bed")


def _beds_month(u: Universe, L: Latent, m: int, units: np.ndarray) -> pl.DataFrame:
    """Per base unit: available and occupied G&A (adult, paediatric) and critical care beds in a month."""
    j = L.col(m)
    S = L.series
    avail = np.round(S["beds"][units, j])
    occ = S["occ"][units, j] / 100
    paed_share = np.array([0.4 if "CHILDREN" in u.base[i].name else 0.08 for i in units])
    e = [u.base[i].effects for i in units]
    paed_a = np.round(avail * paed_share)
    adult_a = avail - paed_a
    adult_o = np.round(adult_a * occ)
    paed_o = np.round(paed_a * np.clip(occ - 0.12, 0.3, 0.99))
    cc_a = np.round(avail * np.array([x["critical_care"] for x in e]))
    cc_o = np.round(cc_a * np.clip(occ - 0.1, 0.3, 0.99))
    picu_a = np.round(avail * 0.012 * np.array([x["has_picu"] for x in e]))
    picu_o = np.round(picu_a * 0.8)
    nicu_a = np.round(avail * 0.02 * np.array([x["has_nicu"] for x in e]))
    nicu_o = np.round(nicu_a * 0.75)
    return pl.DataFrame({
        "org_code": np.array(u.reporting_codes(m))[units],
        "general_acute_beds_available": adult_a + paed_a, "general_acute_beds_occupied": adult_o + paed_o,
        "adult_general_acute_beds_available": adult_a, "adult_general_acute_beds_occupied": adult_o,
        "paediatric_general_acute_beds_available": paed_a, "paediatric_general_acute_beds_occupied": paed_o,
        "adult_critical_care_beds_available": cc_a, "adult_critical_care_beds_occupied": cc_o,
        "paediatric_intensive_cared_beds_available": picu_a, "paediatric_intensive_cared_beds_occupied": picu_o,
        "neonatal_intensive_care_bed_available": nicu_a, "neonatal_intensive_care_bed_occupied": nicu_o})


def beds_file(u: Universe, L: Latent, window: list[int]) -> Iterator[OutFile]:
    units = np.array([i for i, o in enumerate(u.base) if "beds" in o.services])
    frames = []
    for m in window:
        f = _group_sum(_beds_month(u, L, m, units), ["org_code"])
        frames.append(f.with_columns(pl.lit(month_date(m).isoformat()).alias("date")))
    f = pl.concat(frames)
    rate_name = {"general_acute_beds": "general_acute_beds_occupancy_rate",
                 "adult_general_acute_beds": "adult_general_acute_beds_occupancy_rate",
                 "paediatric_general_acute_beds": "paediatric_general_acute_beds_occupancy_rate",
                 "adult_critical_care_beds": "adult_critical_care_occupancy_rate",
                 "paediatric_intensive_cared_beds": "paediatric_intensive_cared_occupancy_rate",
                 "neonatal_intensive_care_bed": "neonatal_intensive_care_occupancy_rate"}
    cols = [pl.col("org_code").alias("nhs_trust22_code"), pl.col("date")]
    for b in _BED_COLS:
        a, o = pl.col(f"{b}_available"), pl.col(f"{b}_occupied")
        cols += [a, o, pl.when(a > 0).then((o / a).round(3)).alias(rate_name[b])]
    out = f.select(cols).sort("date", "nhs_trust22_code")
    yield OutFile("beds_ga_critical_care", "beds_ga_critical_care_monthly_2022_2024",
                  "ga_critical_care_beds_trust_monthly.csv", out)


# ---- KH03 beds open overnight by sector, quarterly (kh03_overnight_beds_by_sector.csv) ---------------------------
def kh03_file(u: Universe, L: Latent, window: list[int]) -> Iterator[OutFile]:
    orgs = u.by_code()
    units = np.array([i for i, o in enumerate(u.base) if "kh03" in o.services])
    kinds = np.array([u.base[i].kind for i in units])
    scale = np.array([u.base[i].scale for i in units])
    wset = set(window)
    frames = []
    for m in window:
        if m % 3 != 2 or not {m - 1, m - 2} <= wset:  # quarters ending Mar, Jun, Sep, Dec fully in the window
            continue
        acc = None
        for k in (m - 2, m - 1, m):
            j = L.col(k)
            S = L.series
            ga_a = np.where(np.isin(kinds, ["acute", "specialist"]), S["beds"][units, j],
                            np.where(kinds == "community", 40 * scale, 0.0))
            ga_o = ga_a * np.where(kinds == "community", 0.88, S["occ"][units, j] / 100)
            mat_a = np.where(kinds == "acute", ga_a * 0.06, 0.0)
            mat_o = mat_a * 0.68
            mi_a = np.where(kinds == "mental_health", 190 * scale, 0.0)
            mi_o = mi_a * np.clip(S["occ"][units, j] / 100 - 0.02, 0.5, 0.99)
            ld_a = mi_a * 0.05
            ld_o = ld_a * 0.8
            part = np.column_stack([ga_a, ld_a, mat_a, mi_a, ga_o, ld_o, mat_o, mi_o])
            acc = part if acc is None else acc + part
        avg = acc / 3 * rng_for(u.seed, S_KH03, m).lognormal(0, 0.01, acc.shape)
        avg[:, 4:] = np.minimum(avg[:, 4:], avg[:, :4])
        f = pl.DataFrame(np.round(avg, 2), schema=["ga_a", "ld_a", "mat_a", "mi_a", "ga_o", "ld_o", "mat_o", "mi_o"],
                         orient="row").with_columns(pl.Series("org_code", np.array(u.reporting_codes(m))[units]))
        f = _group_sum(f, ["org_code"])
        qe = month_end(m)
        fy = qe.year if qe.month >= 4 else qe.year - 1
        fq = {6: 1, 9: 2, 12: 3, 3: 4}[qe.month]
        frames.append(f.with_columns(pl.lit(qe.isoformat()).alias("quarter_end"),
                                     pl.lit(f"{fy}-{(fy + 1) % 100:02d}").alias("year"),
                                     pl.lit(MONTH[qe.month]).alias("period_end"),
                                     pl.lit(f"Beds-Open-Overnight-Web_File-Q{fq}-{fy}-{(fy + 1) % 100:02d}.xlsx")
                                     .alias("source_file")))
    if not frames:
        return
    f = pl.concat(frames)
    a = ["ga_a", "ld_a", "mat_a", "mi_a"]
    o = ["ga_o", "ld_o", "mat_o", "mi_o"]
    names = ("general_acute", "learning_disabilities", "maternity", "mental_illness")
    pct = lambda num, den: pl.when(den > 0).then(num / den)  # noqa: E731
    out = f.select(
        "quarter_end", "year", "period_end",
        pl.col("org_code").map_elements(lambda c: u.regions[orgs[c].region].code, return_dtype=pl.Utf8)
        .alias("region_code"), "org_code",
        pl.col("org_code").map_elements(lambda c: orgs[c].name, return_dtype=pl.Utf8).alias("org_name"),
        pl.sum_horizontal(a).round(2).alias("available_total"), *[pl.col(x).alias(f"available_{n}")
                                                                 for x, n in zip(a, names)],
        pl.sum_horizontal(o).round(2).alias("occupied_total"), *[pl.col(x).alias(f"occupied_{n}")
                                                                for x, n in zip(o, names)],
        pct(pl.sum_horizontal(o), pl.sum_horizontal(a)).alias("pct_occupied_total"),
        *[pct(pl.col(y), pl.col(x)).alias(f"pct_occupied_{n}") for x, y, n in zip(a, o, names)],
        "source_file").sort("quarter_end", "org_code")
    yield OutFile("beds_kh03", "beds_kh03_overnight_quarterly", "kh03_overnight_beds_by_sector.csv", out)


# ---- acute discharge sitrep, daily (discharge_trust_daily.csv) -------------------------------------------------
DISCHARGE_FROM = date(2020, 4, 1)  # the COVID-19 discharge sitrep began in spring 2020
SPLIT_UNTIL = date(2023, 5, 31)  # the by-17:00 split stopped being published after May 2023


def discharge_file(u: Universe, L: Latent, window: list[int]) -> Iterator[OutFile]:
    units = np.array([i for i, o in enumerate(u.base) if "discharge" in o.services])
    S = L.series
    frames = []
    for m in window:
        d0 = month_date(m)
        if d0 < DISCHARGE_FROM:
            continue
        j = L.col(m)
        n_days = days_in(m)
        days = [d0 + timedelta(days=k) for k in range(n_days)]
        weekday = np.array([[1.1, 1.1, 1.1, 1.1, 1.15, 0.75, 0.6][d.weekday()] for d in days])
        r = rng_for(u.seed, S_DISCHARGE, m)
        occupied = S["beds"][units, j] * S["occ"][units, j] / 100
        total = r.poisson(np.outer(occupied * 0.21, weekday))
        nctr = r.poisson(np.outer(S["beds"][units, j] * S["nctr"][units, j], np.ones(n_days)))
        by5 = r.binomial(total, 0.32)
        codes = np.array(u.reporting_codes(m))[units]
        f = pl.DataFrame({"org": np.repeat(codes, n_days), "day": np.tile(np.arange(n_days), len(units)),
                          "by5": by5.ravel(), "total": total.ravel(), "nctr": nctr.ravel()})
        f = _group_sum(f, ["org", "day"])
        split = d0 <= SPLIT_UNTIL
        frames.append(f.select(
            pl.col("org").alias("nhs_trust22_code"),
            pl.col("day").map_elements(lambda k: days[k].isoformat(), return_dtype=pl.Utf8).alias("date"),
            (pl.col("by5") if split else pl.lit(None)).cast(pl.Float64).alias("discharged_by_1700"),
            ((pl.col("total") - pl.col("by5")) if split else pl.lit(None)).cast(pl.Float64)
            .alias("discharged_between_1701_2359"),
            pl.col("total").cast(pl.Float64).alias("discharged_total"),
            pl.col("nctr").cast(pl.Float64).alias("do_not_meet_criteria_to_reside")))
    if frames:
        out = pl.concat(frames).sort("date", "nhs_trust22_code")
        yield OutFile("discharge_daily", "discharge_sitrep_trust_daily", "discharge_trust_daily.csv", out)


# ---- virtual wards by ICB, monthly (virtual_wards_icb_monthly.csv) ---------------------------------------------
VW_FROM = date(2022, 4, 1)


def virtual_wards_file(u: Universe, L: Latent, window: list[int]) -> Iterator[OutFile]:
    months = [m for m in window if month_date(m) >= VW_FROM]
    if not months:
        return
    per100k = trajectory(VW_PER_100K, np.array(months))
    vw0 = VW_FROM.year * 12 + VW_FROM.month - 1
    rows = []
    for icb in u.icbs:
        r = rng_for(u.seed, S_VW, icb.index)
        effect, occ_base = r.lognormal(0, 0.25), r.uniform(0.6, 0.8)
        noise = r.lognormal(0, 0.03, u.end - vw0 + 1)  # drawn last and from a fixed start: stable across windows
        reg = u.regions[icb.region]
        for k, m in enumerate(months):
            gp = round(icb.population * 1.08 * (1 + 0.006 * (m - vw0) / 12))
            cap = int(round(gp / 1e5 * per100k[k] * effect * noise[m - vw0]))
            occ = min(0.98, occ_base + (0.06 if m % 12 in (10, 11, 0, 1) else 0.0))
            patients = float(round(cap * occ))
            rows.append((month_date(m).isoformat(), reg.display, reg.code, icb.code, icb.name, cap,
                         round(cap / gp * 1e5, 1), gp, patients, round(patients / cap, 3) if cap else None))
    out = pl.DataFrame(rows, schema=["period_month", "region_name", "region_code", "icb_code", "icb_name",
                                     "vw_capacity", "vw_capacity_per_100k_gp_pop", "gp_registered_population",
                                     "vw_patients", "vw_occupancy"], orient="row").sort("period_month", "icb_code")
    yield OutFile("virtual_wards", "virtual_wards_icb_monthly", "virtual_wards_icb_monthly.csv", out)


# ---- RTT flows by ICB (rtt_icb_flows.csv): new, completed and incomplete pathways --------------------------------
def rtt_flows_file(u: Universe, L: Latent, window: list[int]) -> Iterator[OutFile]:
    S = L.series
    rows = []
    for icb in u.icbs:
        members = [i for i, o in enumerate(u.base) if o.icb == icb.index and "rtt" in o.services]
        if not members:
            continue
        r = rng_for(u.seed, S_FLOWS, icb.index)
        cols = np.arange(L.col(window[0]) - 1, L.col(window[-1]) + 1)
        lst = 1.15 * S["rtt_list"][members][:, cols].sum(axis=0)
        noise = r.lognormal(0, 0.03, L.col(window[-1]) + 2)[cols]
        for k in range(1, len(cols)):
            m = int(L.months[cols[k]])
            prev, now = lst[k - 1], lst[k]
            new = prev * 0.125 * S["covid_el"][members[0], cols[k]] * noise[k]
            removals = 0.028 * prev
            completed = prev + new - removals - now
            if completed < 0.03 * prev:
                completed = 0.03 * prev
                new = now - prev + completed + removals
            d = month_date(m)
            rows.append((icb.code, d.isoformat(), float(d.year), MON[d.month], float(round(completed)),
                         float(round(now)), float(round(new))))
    out = pl.DataFrame(rows, schema=["stp20_nhs_code", "date", "year", "month", "completed", "incomplete", "new"],
                       orient="row").sort("date", "stp20_nhs_code")
    yield OutFile("rtt_icb_flows", "rtt_trust_long_waits_2019_2025", "rtt_icb_flows.csv", out)


# ---- organisation reference (ODS, ONS) ----------------------------------------------------------------------------
def _postcode(o: Org) -> str:
    return f"ZZ{o.serial % 99 + 1} {o.serial % 9 + 1}SY"  # ZZ postcodes do not exist in England


def reference_files(u: Universe) -> Iterator[OutFile]:
    trusts = [o for o in u.orgs if o.is_trust]
    rows = []
    for o in sorted(trusts, key=lambda o: o.code):
        icb, reg = u.icbs[o.icb], u.regions[o.region]
        rows.append((o.code, o.name, reg.code, icb.code, f"{o.serial + 1} SYNTHETIC ROAD",
                     f"SYNTHETIC {icb.place.upper()}", _postcode(o), _iso(o.open_date), _iso(o.close_date), reg.gor,
                     icb.ons_code, icb.name, reg.ons_code, reg.display, reg.display))
    ods = pl.DataFrame(rows, orient="row", schema=[
        "org_code", "org_name", "nhs_region_code", "icb_code", "address_line_1", "town", "postcode", "open_date",
        "close_date", "gor_code", "icb_ons_code", "icb_name", "nhs_region_ons_code", "nhs_region_name",
        "nhs_region_name_from_code"])
    yield OutFile("ods_trusts_2025", "org_reference", "trusts_ods_etr_2025.csv", ods, inject=False)
    sub = []
    for icb in u.icbs:
        reg = u.regions[icb.region]
        for code, ons in icb.sub_icbs:
            sub.append((ons, code, f"SYNTHETIC NHS {icb.place} ICB - {code}", icb.ons_code, icb.code, icb.name,
                        reg.ons_code, reg.code, reg.display))
    yield OutFile("subicb_icb_region", "org_reference", "lookup_subicb_icb_region_2022.csv", pl.DataFrame(
        sub, orient="row", schema=["sub_icb_ons_code", "sub_icb_code", "sub_icb_name", "icb_ons_code", "icb_code",
                                   "icb_name", "nhs_region_ons_code", "nhs_region_code", "nhs_region_name"]),
        inject=False)
    if u.mergers:
        succ = [(old, m.new, m.date.isoformat()) for m in u.mergers for old in m.old]
        yield OutFile("ods_successors", "org_reference", "lookup_org_successors.csv",
                      pl.DataFrame(succ, orient="row", schema=["old_code", "new_code", "date"]), inject=False)
    # catchment: acute and specialist trusts open at the end, patients mostly from the host ICB
    catch = []
    for o in trusts:
        if o.kind not in ("acute", "specialist") or o.close_date is not None:
            continue
        r = rng_for(u.seed, S_POP, 1000 + o.serial)
        same_region = [i for i in u.icbs if i.region == o.region and i.index != o.icb]
        host = r.uniform(0.55, 0.8) if o.kind == "specialist" else r.uniform(0.82, 0.97)
        others = [same_region[k] for k in r.permutation(len(same_region))[:2]] if same_region else []
        shares = [host] + list((1 - host) * r.dirichlet(np.ones(len(others)))) if others else [1.0]
        for icb, s in zip([u.icbs[o.icb]] + others, shares):
            catch.append((o.code, icb.ons_code, float(s)))
    yield OutFile("trust_icb_catchment", "org_reference", "lookup_trust22_icb22_catchment_proportions.csv",
                  pl.DataFrame(catch, orient="row", schema=["nhs_trust22_code", "icb22_code",
                                                            "proportion_trust_came_from_icb"]), inject=False)


def supplement_file(u: Universe) -> Iterator[OutFile]:
    rows = []
    for o in u.orgs:
        if o.is_trust:
            continue
        seen = "ae_monthly_official" if "ae_t3" in o.services else "dm01_diagnostics"
        rows.append((o.code, o.name, "independent_or_other_provider", u.regions[o.region].code, u.icbs[o.icb].code,
                     seen, "SYNTHETIC organisation generated by ibp synth; not a real provider"))
    yield OutFile("organisations_supplement", "@reference", "organisations_supplement.csv", pl.DataFrame(
        rows, orient="row", schema=["org_code", "org_name", "org_type", "nhs_region_code", "icb_code", "seen_in",
                                    "note"]), gzip=False, inject=False)


# ---- population, deprivation, health index ------------------------------------------------------------------------
def population_files(u: Universe) -> Iterator[OutFile]:
    ages = np.arange(91)
    base = np.where(ages < 20, 1.15, np.where(ages < 50, 1.25, np.where(ages < 70, 1.15, 1.0))) * \
        np.exp(-np.maximum(ages - 60, 0) / 14)
    pop_rows, imd_rows, hi_rows = [], [], []
    for icb in u.icbs:
        r = rng_for(u.seed, S_POP, icb.index)
        w = base * r.lognormal(0, 0.05, 91)
        by_age = np.round(icb.population * w / w.sum())
        pop_rows.append([icb.ons_code, icb.code, icb.name, float(by_age.sum())] + [float(x) for x in by_age])
        score = icb.imd_score
        share10 = float(np.clip((score - 10) / 80 + r.normal(0, 0.02), 0, 0.5))
        imd_rows.append([icb.ons_code, icb.name, round(33755 * (0.5 - (score - 21.5) / 60), 2), 0.0, round(score, 3),
                         0.0, round(share10, 4), 0.0, round(score / 20 - 1 + r.normal(0, 0.1), 3)])
        level = 100 - 0.6 * (score - 21.5) + r.normal(0, 2)
        for y in range(2015, 2022):
            drift = -0.4 * (y - 2015) + r.normal(0, 0.4)
            hi_rows.append([icb.ons_code, icb.name, float(y), round(level + drift, 1),
                            round(level + drift + r.normal(0, 2), 1), round(level + drift + r.normal(0, 2), 1),
                            round(level + drift + r.normal(0, 2), 1)])
    pop = pl.DataFrame(pop_rows, orient="row", schema=["icb22_code", "icb22_code_h", "icb22_name", "total_population"]
                       + [str(a) for a in range(90)] + ["90+"])
    yield OutFile("population_icb_2020", "population_ons", "ons_mid2020_icb22_single_age.csv", pop, inject=False)
    imd = pl.DataFrame(imd_rows, orient="row", schema=[
        "icb24_code", "icb24_name", "imd_average_rank", "imd_rank_of_average_rank", "imd_average_score",
        "imd_rank_of_average_score", "imd_proportion_of_lso_as_in_most_deprived_10_percent_nationally",
        "imd_rank_of_proportion_of_lso_as_in_most_deprived_10_percent_nationally",
        "health_deprivation_and_disability_average_score"])
    rank = lambda c, desc: pl.col(c).rank("ordinal", descending=desc).cast(pl.Float64)  # noqa: E731  1 = most deprived
    imd = imd.with_columns(rank("imd_average_rank", False).alias("imd_rank_of_average_rank"),
                           rank("imd_average_score", True).alias("imd_rank_of_average_score"),
                           rank("imd_proportion_of_lso_as_in_most_deprived_10_percent_nationally", True)
                           .alias("imd_rank_of_proportion_of_lso_as_in_most_deprived_10_percent_nationally"))
    yield OutFile("imd_icb", "deprivation_imd", "imd2025_england_icb24.csv", imd, inject=False)
    hi = pl.DataFrame(hi_rows, orient="row", schema=["icb22_code", "icb22_name", "year", "overall_score",
                                                     "healthy_people_domain", "healthy_lives_domain",
                                                     "healthy_places_domain"])
    yield OutFile("health_index_icb", "population_health_index_icb", "england_health_index_ics.csv", hi, inject=False)


# ---- trust peer finder, national cost collection, estates (snapshots) ---------------------------------------------
def peer_finder_file(u: Universe, L: Latent) -> Iterator[OutFile]:
    j = L.col(min(2018 * 12 + 2, u.end))
    rows = []
    for i, o in enumerate(u.base):
        if not o.is_trust or o.kind == "ambulance":
            continue
        r = rng_for(u.seed, S_PEERS, o.serial)
        acute = o.kind in ("acute", "specialist")
        spec = {"specialist": r.uniform(1.5e5, 8.8e5), "acute": r.normal(0, 6e4)}.get(o.kind, r.normal(-1e4, 1e4))
        rows.append((o.code, round(u.icbs[o.icb].imd_score + r.normal(0, 3), 1), int(o.scale * 2.6e5 * acute + 5e3),
                     int(o.scale * 1.1e6 * acute + 2e4), round(float(L.series["wf"][i, j]), 1),
                     round(r.uniform(0.1, 0.3), 2), round(r.uniform(0.85, 0.95), 2), round(r.uniform(0.5, 1.0), 2),
                     round(r.uniform(0.12, 0.22), 2), round(r.uniform(0.15, 0.25), 2), round(r.uniform(0.3, 0.9), 2),
                     int(r.normal(0, 8e5)), round(r.uniform(0.3, 1.0), 2), int(r.integers(2, 400)),
                     round(r.uniform(0, 80), 1), round(r.uniform(0.95, 1.2), 2), round(float(spec), 2),
                     round(r.uniform(0, 0.04), 2), int(r.integers(2, 60)), int(o.kind == "community"),
                     round(r.uniform(0.035, 0.06), 2), float(int(r.integers(0, 3000)) if acute else 0)))
    out = pl.DataFrame(rows, orient="row", schema=[
        "Procode", "Deprivation", "Patients", "Attendances", "FTE staff", "Diagnosis", "Night beds", "Day beds",
        "Age   0-15", "Age   60-74", "No procedure", "Operating Expenses", "Urban", "Sites", "Sea distance",
        "MFF payment index", "Degree of specialisation", "StudentStaff", "CCGs", "Non-type 1 AE department",
        "Absence Rate", "DTOCs"])
    yield OutFile("trust_peer_finder", "trust_peer_finder_characteristics_2018",
                  "nhs_trust_peer_finder_appendix_a.csv", out, inject=False)


_NCC = (  # department, currency prefix or list of codes, n currencies, unit cost range, national activity
    ("Emergency Care", ["VB01Z", "VB02Z", "VB03Z", "VB04Z", "VB05Z", "VB06Z", "VB07Z", "VB08Z", "VB09Z", "VB10Z",
                        "VB11Z", "VB99Z"], (120, 560), 2.0e6),
    ("Non-Elective Inpatient - Short Stay", [f"{c}{s}" for c in ("FD01", "EB03", "DZ11", "LA04", "WH07", "PA16")
                                             for s in ("A", "B", "C")], (600, 1500), 3.0e5),
    ("Non-Elective Inpatient - Long Stay", [f"{c}{s}" for c in ("FD01", "EB03", "DZ11", "LA04", "WH07", "PA16")
                                            for s in ("A", "B", "C")], (2500, 9000), 3.5e5),
    ("Elective Inpatients", ["HN12A", "HN22B", "FF32C", "LB25D"], (3000, 9000), 6.0e4),
    ("Diagnostic Imaging", ["RD01A", "RD02A", "RD20A", "RD21A", "RD40Z", "RD41Z", "RD30Z", "RD50Z", "RD51A"],
     (40, 220), 6.0e5),
    ("Directly Accessed Diagnostic Services", ["RD01A", "RD20A", "RD40Z", "RD50Z", "DZ50Z", "EY50Z"], (35, 180),
     8.0e5),
    ("Outpatient Procedures", ["FE20Z", "FE21Z", "FE30Z", "FE31Z", "FE33Z", "LB72A", "LB42A", "AA33A", "EY32A"],
     (250, 900), 9.0e4),
    ("Daycase", ["FE20Z", "FE21Z", "FE30Z", "FE31Z", "FE33Z", "FE34Z", "LB72A", "EY32A"], (450, 1400), 1.2e5),
    ("Directly Accessed Audiology", ["CA37A", "CA37B"], (60, 120), 2.0e5),
)


def ncc_file(u: Universe) -> Iterator[OutFile]:
    r = rng_for(u.seed, S_NCC)
    rows = []
    for dept, codes, (lo, hi), activity in _NCC:
        for code in codes:
            unit = float(r.uniform(lo, hi))
            act = float(round(activity * r.lognormal(0, 0.6)))
            rows.append((dept, code, f"SYNTHETIC currency {code} ({dept})", act, unit, act * unit))
    out = pl.DataFrame(rows, orient="row", schema=["department_code", "currency_code", "currency_desc", "activity",
                                                   "unit_cost", "cost"])
    yield OutFile("national_cost_collection", "finance_national_cost_collection_2024_25",
                  "ncc_national_schedule_2024_25.csv", out, inject=False)


def _thousands(x: float) -> str:
    return f"{int(round(x)):,}"


def estates_file(u: Universe) -> Iterator[OutFile]:
    start, end = date(2019, 4, 1), date(2020, 3, 31)
    rows = []
    for o in u.orgs:
        if not o.is_trust or o.open_date > end or (o.close_date is not None and o.close_date < start):
            continue
        r = rng_for(u.seed, S_ESTATES, o.serial)
        reg, icb = u.regions[o.region], u.icbs[o.icb]
        ttype, sites = {
            "acute": ("ACUTE - TEACHING" if o.effects.get("teaching") else "ACUTE - LARGE",
                      ["1. General acute hospital"] * int(r.integers(1, 3)) + ["Other Reportable Site"]),
            "specialist": ("ACUTE - SPECIALIST", ["2. Specialist hospital (acute only)"]),
            "mental_health": ("MENTAL HEALTH AND LEARNING DISABILITY",
                              ["4. Mental Health (including Specialist services)"] * int(r.integers(2, 6))),
            "community": ("COMMUNITY", ["7. Community hospital (with inpatient beds)"] * int(r.integers(1, 4))),
            "ambulance": ("AMBULANCE", ["Ambulance services"] * int(r.integers(3, 8)))}[o.kind]
        size = max(o.scale, 0.1)
        for k, stype in enumerate(sites, 1):
            gia = size * r.uniform(6e4, 1.4e5) / len(sites)
            backlog = gia * r.uniform(50, 400)
            split = r.dirichlet([1, 3, 4, 4])
            rows.append((o.code, o.name, f"SYNTHETIC {reg.name.upper()} COMMISSIONING REGION", ttype,
                         f"{o.code}{k:02d}", f"SYNTHETIC {icb.place.upper()} SITE {k}", stype, "Freehold", "No",
                         _postcode(o), _thousands(gia), str(int(r.integers(0, 300))),
                         *[_thousands(backlog * s) for s in split]))
    out = pl.DataFrame(rows, orient="row", schema=[
        "Trust Code", "Trust Name", "Commissioning Region", "Trust Type", "Site Code", "Site Name", "Site Type",
        "Tenure", "Leased", "Post Code", "Gross internal floor area (m²)",
        "Single bedrooms for patients with en-suite facilities (No.)", "Cost to eradicate high risk backlog (£)",
        "Cost to eradicate significant risk backlog (£)", "Cost to eradicate moderate risk backlog (£)",
        "Cost to eradicate low risk backlog (£)"])
    yield OutFile("estates_eric_site", "estates_eric_2019_20_site", "eric_2019_20_site_data.csv", out, inject=False)


GENERATED = {  # registry source -> why it is generated
    "ods_trusts_2025": "trusts with ICB and region: the organisation register (required)",
    "subicb_icb_region": "ICBs and regions (required for ICB, region and England roll-ups)",
    "ods_successors": "merger successors (written when --mergers > 0)",
    "trust_icb_catchment": "patient shares by ICB (population ratios, population-health scores)",
    "organisations_supplement": "independent-sector providers (reference folder)",
    "ae_monthly_official": "A&E monthly provider files with TOTAL row",
    "rtt_incomplete": "RTT incomplete pathways by provider and treatment function, one file a month",
    "rtt_icb_flows": "RTT clock starts, stops and list by ICB (waiting-list flow model)",
    "dm01_diagnostics": "DM01 diagnostics by provider and test, one file a month",
    "cancer_waiting_times": "cancer waiting times (28-day FDS, 31-day and 62-day combined)",
    "workforce_staff_group": "workforce FTE and headcount by staff group",
    "beds_ga_critical_care": "G&A and critical care beds, monthly",
    "beds_kh03": "KH03 beds open overnight by sector, quarterly",
    "discharge_daily": "discharge sitrep, daily (from April 2020)",
    "virtual_wards": "virtual ward capacity and occupancy by ICB (from April 2022)",
    "population_icb_2020": "ICB population (per-capita ratios)",
    "imd_icb": "IMD by ICB (peer groups, population-health scores)",
    "health_index_icb": "Health Index by ICB (population-health scores)",
    "trust_peer_finder": "trust characteristics (peer groups)",
    "national_cost_collection": "a synthetic national unit-cost schedule (activity costs)",
    "estates_eric_site": "estates by site (backlog maintenance)",
}
OMITTED = {  # registry source -> why it is not generated
    "ods_trusts_2020": "older ODS snapshot: only fills gaps the 2025 extract leaves",
    "ods_trusts_2026": "2026 ICB map: not needed",
    "trust_mergers": "2020-21 merger list: synthetic mergers are in lookup_org_successors.csv",
    "trust_region_2021": "region fallback only",
    "ae_trust_monthly": "healthyr copy of A&E: a fallback and comparison source for the official file",
    "ae_icb_monthly": "healthyr ICB A&E: not used by any metric",
    "ae_attendances_2016_2019": "NHS-R A&E 2016-19: a fallback source for the official file",
    "rtt_long_waits": "healthyr RTT long waits: comparison source only",
    "rtt_icb_long_waits": "not used by any metric",
    "workforce_total": "total FTE series: workforce_fte comes from the staff-group file",
    "beds_kh03_specialty": "not used by any metric",
    "discharge_delay_reasons": "not used by any metric",
    "population_uk_2023": "not used by any step",
    "imd_ltla": "not used by any step",
    "health_index_indicators": "not used by any step",
    "staff_survey_2024": "not used by any step",
}
