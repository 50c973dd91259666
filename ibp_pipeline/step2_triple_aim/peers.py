"""Step-2 peer groups: NHS trusts clustered on size and case mix, so each trust is compared with similar trusts.

Why: a small community trust and a large teaching hospital should not be judged against one national median.
The benchmarks (benchmarks.py) and the peer ranks (scoring.py) use these groups.

Who is grouped: every `nhs_trust` in s1_current_state.organisations with at least one provider row in
s1_current_state.metric_values ("with activity"). Trusts with no rows at all are out of scope (counted in the log).

Features (one row per trust; the raw value and its standardised z-value are both written):
- size: mean monthly A&E attendances, mean G&A beds available (monthly sitrep, else KH03 quarterly) and mean
  workforce FTE, each over the latest 12 months of the metric (for a current trust the 12 months ending at the
  metric's latest month nationally; for a closed trust the 12 months ending at its own last month). Size enters
  as log(1 + x), so a doubling counts the same at any size.
- case mix: deprivation (peer-finder IMD score of the trust's patients), degree of specialisation (peer finder;
  heavy-tailed and signed, -34,550 to 879,599, so it enters as its percentile rank) and the share of FTE in the
  ambulance staff groups (without it the ten ambulance trusts, which have no A&E, no beds and are not in the
  peer finder, look like mental health trusts).
Missing values are filled, and every fill is written in `imputed`:
- for a current trust, no A&E return in the window -> 0 attendances (no A&E department); no G&A beds -> 0
  (community, mental health, ambulance). For a trust that closed before the source began (the A&E series
  starts in 2016, G&A beds in 2022) the gap is left unknown and out of its nearest-group distance;
- no staff-group FTE (series starts in 2024) -> ambulance share 0: all ten current ambulance trusts have it,
  and an unknown share for a closed trust would otherwise pull it towards the ambulance group;
- workforce FTE missing -> the peer finder's fte_staff;
- deprivation: peer finder -> FTE-weighted mean over predecessor trusts in the peer finder (mergers) ->
  catchment-weighted IMD 2025 average score of the ICBs the trust's patients come from -> its host ICB's IMD
  2025 score -> the national median;
- specialisation: peer finder -> predecessors' FTE-weighted mean -> the median (percentile 0.5).
A trust whose type is unknown (not in either source, nor its predecessors, and not ambulance), or which cannot be
placed within a type that is split (no workforce FTE, or neither A&E attendances nor G&A beds known), goes to the
fallback group (peer_group_id 0, assignment says why). It has no peers, and is listed, never dropped.

Types first (trust_types.py): every trust is typed from the NHS Staff Survey 2024 benchmarking group and the
ERIC 2019/20 size band (predecessors for merged trusts; the ambulance staff share as a last resort), and is only
ever grouped with trusts of its own type: a leader does not accept a community trust or a children's hospital as
the peer of a district general hospital, however alike their size.
Clustering within type: the features are standardised over the current trusts (open, with data in the last 12
months) of every type, so z-values read against the average NHS trust. A type with MIN_TO_CLUSTER or more current
trusts is split by KMeans (n_init=10, random_state=seed) on the size, deprivation and specialisation z-values into
the k in WITHIN_K with the best silhouette whose smallest group has MIN_GROUP_SIZE trusts (the ambulance share is
left out: it is the type); a smaller type, or one with no such split, is one group: its published band. On the
bundled data: acute teaching splits in 3, acute large, medium and small, and mental health in 2; acute
specialist, specialist children's, community and ambulance are one group each. A group is named by its type and
its size and the case-mix feature that separate it from the other groups of the type ("Acute teaching: small,
mid deprivation"). Closed or
dormant trusts join the nearest group centre of their type; multi-service acute trusts (ERIC) and acute trusts
without a band the nearest general acute group. Group ids follow the type order (UNIT_ORDER), then size.
"""
from __future__ import annotations

import logging

import duckdb
import numpy as np
import polars as pl
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from ibp_pipeline.lib.duckdb_tables import replace_table
from ibp_pipeline.step2_triple_aim.trust_types import TYPE_LABELS, classify, trust_type_inputs_sql

log = logging.getLogger(__name__)

SCHEMA = "s2_triple_aim"
TABLE = f"{SCHEMA}.peer_groups"
S1 = "s1_current_state"

FALLBACK_GROUP_ID = 0
FALLBACK_LABEL = "Not grouped: type unknown or too little data (no peer group)"

# z-column -> the raw column it standardises, and how that raw value is transformed first.
FEATURES: dict[str, tuple[str, str]] = {
    "z_ae_attendances": ("ae_attendances_monthly", "log1p"),
    "z_ga_beds": ("ga_beds", "log1p"),
    "z_workforce_fte": ("workforce_fte", "log1p"),
    "z_deprivation": ("deprivation", "identity"),
    "z_specialisation": ("specialisation_pct_rank", "identity"),
    "z_ambulance_share": ("ambulance_share", "identity"),
}
SIZE_FEATURES = ("z_ae_attendances", "z_ga_beds", "z_workforce_fte")

# Thresholds that name a group (on the members' medians of the raw features).
ACUTE_MIN_AE_MONTHLY = 1_000
INPATIENT_MIN_BEDS = 50
AMBULANCE_MIN_SHARE = 0.3
SPECIALISED_MIN_PCT = 0.8


def icb_codes_sql() -> str:
    """CTE body mapping any ONS E54 ICB code to the ODS Q-code. ICB codes changed in April 2024 for Surrey
    Heartlands and Sussex (Crawley moved), so an unknown E54 code is matched on the ICB's name instead."""
    return (f"select org_code as icb_code, ons_code, upper(trim(org_name)) as icb_name "
            f"from {S1}.organisations where org_type = 'icb'")


def icb_imd_sql() -> str:
    """IMD 2025 average score per ICB Q-code (latest.imd_icb is keyed by 2024 E54 codes)."""
    return f"""
        select coalesce(a.icb_code, b.icb_code) as icb_code, m.icb24_code, m.imd_average_score
        from latest.imd_icb m
        left join ({icb_codes_sql()}) a on a.ons_code = m.icb24_code
        left join ({icb_codes_sql()}) b on b.icb_name = upper(trim(m.icb24_name))
        where coalesce(a.icb_code, b.icb_code) is not null"""


def _raw_features_sql() -> str:
    size_metrics = ("ae_attendances", "ga_beds_available", "kh03_ga_beds_available", "workforce_fte",
                    "workforce_fte_ambulance_staff", "workforce_fte_support_to_ambulance_staff")
    metric_list = ", ".join(f"'{m}'" for m in size_metrics)
    return f"""
    with last as (select max(period_start) as last_period from {S1}.metric_values),
    prov as (
        select org_code, metric_id, period_start, value from {S1}.metric_values
        where org_level = 'provider' and metric_id in ({metric_list}) and value is not null),
    recent as (
        select distinct org_code from {S1}.metric_values, last
        where org_level = 'provider' and period_start > last.last_period - interval 12 month),
    trusts as (
        select o.org_code, o.org_name, o.parent_icb_code, o.parent_icb_code_2022,
               (o.close_date is null or o.close_date > last.last_period)
                 and o.org_code in (select org_code from recent) as is_current
        from {S1}.organisations o, last
        where o.org_type = 'nhs_trust'
          and o.org_code in (select distinct org_code from {S1}.metric_values where org_level = 'provider')),
    global_last as (select metric_id, max(period_start) as last_period from prov group by 1),
    own_last as (select org_code, metric_id, max(period_start) as last_period from prov group by 1, 2),
    windowed as (
        select p.org_code, p.metric_id, avg(p.value) as value
        from prov p
        join trusts t using (org_code)
        join global_last g using (metric_id)
        join own_last o using (org_code, metric_id)
        where p.period_start <= (case when t.is_current then g.last_period else o.last_period end)
          and p.period_start > (case when t.is_current then g.last_period else o.last_period end)
                               - interval 12 month
        group by 1, 2),
    wide as (
        select org_code,
            max(value) filter (where metric_id = 'ae_attendances') as ae_attendances,
            max(value) filter (where metric_id = 'ga_beds_available') as ga_beds_sitrep,
            max(value) filter (where metric_id = 'kh03_ga_beds_available') as ga_beds_kh03,
            max(value) filter (where metric_id = 'workforce_fte') as workforce_fte,
            sum(value) filter (where metric_id in ('workforce_fte_ambulance_staff',
                                                   'workforce_fte_support_to_ambulance_staff')) as ambulance_fte
        from windowed group by 1),
    pf as (
        select upper(trim(org_code)) as org_code, avg(deprivation) as deprivation,
               avg(degree_of_specialisation) as specialisation, avg(fte_staff) as fte_staff
        from latest.trust_peer_finder group by 1),
    pred as (
        select o.successor_code as org_code,
               sum(pf.deprivation * pf.fte_staff) / sum(pf.fte_staff) as deprivation,
               sum(pf.specialisation * pf.fte_staff) / sum(pf.fte_staff) as specialisation,
               string_agg(o.org_code, ', ' order by o.org_code) as predecessors
        from {S1}.organisations o join pf using (org_code)
        where o.successor_code is not null and pf.fte_staff > 0
        group by 1),
    imd as ({icb_imd_sql()}),
    icb_codes as ({icb_codes_sql()}),
    catch as (
        select c.nhs_trust22_code as org_code,
               sum(c.proportion_trust_came_from_icb * imd.imd_average_score)
                 / sum(c.proportion_trust_came_from_icb) as catchment_imd
        from latest.trust_icb_catchment c
        join icb_codes i on i.ons_code = c.icb22_code
        join imd on imd.icb_code = i.icb_code
        where c.proportion_trust_came_from_icb > 0
        group by 1)
    , coverage as (
        select min(period_start) filter (where metric_id = 'ae_attendances') as ae_first_period,
               min(period_start) filter (where metric_id in ('ga_beds_available', 'kh03_ga_beds_available'))
                 as beds_first_period,
               min(period_start) filter (where metric_id = 'workforce_fte_ambulance_staff')
                 as staff_groups_first_period
        from prov),
    trust_last as (
        select org_code, max(period_start) as trust_last_period from {S1}.metric_values
        where org_level = 'provider' group by 1)
    , types as ({trust_type_inputs_sql()})
    select t.org_code, t.org_name, t.is_current, tl.trust_last_period,
           types.nss_group, types.eric_type, types.eric_name, types.predecessors as type_predecessors,
           types.pred_nss_groups, types.pred_eric_types,
           coverage.ae_first_period, coverage.beds_first_period, coverage.staff_groups_first_period,
           w.ae_attendances, w.ga_beds_sitrep, w.ga_beds_kh03, w.workforce_fte, w.ambulance_fte,
           pf.fte_staff as pf_fte, pf.deprivation as pf_deprivation, pf.specialisation as pf_specialisation,
           pred.deprivation as pred_deprivation, pred.specialisation as pred_specialisation, pred.predecessors,
           catch.catchment_imd, host.imd_average_score as host_icb_imd
    from trusts t
    left join wide w using (org_code)
    left join pf using (org_code)
    left join pred using (org_code)
    left join catch using (org_code)
    left join imd host on host.icb_code = coalesce(t.parent_icb_code_2022, t.parent_icb_code)
    left join trust_last tl using (org_code)
    left join types using (org_code)
    cross join coverage
    order by t.org_code"""


def _first_filled(frame: pl.DataFrame, target: str, candidates: list[tuple[str, str]],
                  default: float | None, default_note: str | None) -> pl.DataFrame:
    """Fill `target` from the first non-null candidate column, noting which one was used in `imputed`."""
    value = pl.lit(None, dtype=pl.Float64)
    note = pl.lit(None, dtype=pl.String)
    for column, label in reversed(candidates):
        value = pl.when(pl.col(column).is_not_null()).then(pl.col(column)).otherwise(value)
        note = pl.when(pl.col(column).is_not_null()).then(pl.lit(label)).otherwise(note)
    if default is not None:
        value = value.fill_null(default)
        note = note.fill_null(pl.lit(default_note))
    return frame.with_columns(value.cast(pl.Float64).alias(target), note.alias(f"_{target}_note"))


def assemble_features(raw: pl.DataFrame) -> pl.DataFrame:
    """Fill missing raw features by the documented rules and record each fill in `imputed`; flag
    `has_enough` (a workforce FTE from either source). Pure: the input is the raw feature query's shape."""
    current = pl.col("is_current").fill_null(False)

    def covered(first: str) -> pl.Expr:
        """The source was running while the trust existed, so a gap means none (0), not unknown."""
        return current | (pl.col("trust_last_period") >= pl.col(first)).fill_null(False)

    def zero_if_covered(e: pl.Expr, first: str) -> pl.Expr:
        return pl.when(covered(first)).then(e.fill_null(0.0)).otherwise(e)

    frame = raw.with_columns(
        zero_if_covered(pl.col("ae_attendances"), "ae_first_period").alias("ae_attendances_monthly"),
        zero_if_covered(pl.coalesce("ga_beds_sitrep", "ga_beds_kh03"), "beds_first_period").alias("ga_beds"),
        (pl.col("ambulance_fte") / pl.col("workforce_fte")).fill_nan(None).fill_null(0.0).alias("ambulance_share"),
    )
    pct = frame.select(
        pl.coalesce("pf_specialisation", "pred_specialisation").rank("average").alias("r"),
        pl.coalesce("pf_specialisation", "pred_specialisation").count().alias("n"))
    frame = frame.with_columns(
        pl.coalesce("pf_specialisation", "pred_specialisation").alias("specialisation"),
        (pct["r"] / pct["n"]).alias("specialisation_pct_rank"))
    dep_median = frame.select(pl.coalesce("pf_deprivation", "pred_deprivation", "catchment_imd",
                                          "host_icb_imd").median()).item()
    frame = _first_filled(frame, "workforce_fte", [("workforce_fte", "metric_values"),
                                                   ("pf_fte", "Trust Peer Finder staff count")], None, None)
    frame = _first_filled(frame, "deprivation", [
        ("pf_deprivation", "peer finder"), ("pred_deprivation", "predecessor trusts in the peer finder"),
        ("catchment_imd", "catchment-weighted ICB IMD 2025 score"), ("host_icb_imd", "host ICB IMD 2025 score")],
        dep_median if dep_median is not None else 0.0, "national median")
    frame = frame.with_columns(
        pl.when(pl.col("pf_specialisation").is_not_null()).then(pl.lit("peer finder"))
        .when(pl.col("pred_specialisation").is_not_null()).then(pl.lit("predecessor trusts in the peer finder"))
        .otherwise(pl.lit("median (0.5)")).alias("_specialisation_note"),
        pl.col("specialisation_pct_rank").fill_null(0.5))
    unknown = " unknown (the trust closed before the source began): left out of the distance"
    notes = [
        pl.when(pl.col("ae_attendances").is_null() & covered("ae_first_period"))
        .then(pl.lit("A&E attendances: none reported, set to 0"))
        .when(pl.col("ae_attendances").is_null()).then(pl.lit("A&E attendances:" + unknown)),
        pl.when(pl.col("ga_beds_sitrep").is_null() & pl.col("ga_beds_kh03").is_not_null())
        .then(pl.lit("G&A beds: KH03 quarterly (no monthly sitrep)"))
        .when(pl.col("ga_beds_sitrep").is_null() & covered("beds_first_period"))
        .then(pl.lit("G&A beds: none reported, set to 0"))
        .when(pl.col("ga_beds_sitrep").is_null()).then(pl.lit("G&A beds:" + unknown)),
        pl.when(pl.col("_workforce_fte_note") != "metric_values")
        .then(pl.lit("workforce FTE: ") + pl.col("_workforce_fte_note"))
        .when(pl.col("_workforce_fte_note").is_null()).then(pl.lit("workforce FTE: missing")),
        pl.when(pl.col("_deprivation_note") != "peer finder").then(pl.lit("deprivation: ") + pl.col("_deprivation_note")),
        pl.when(pl.col("_specialisation_note") != "peer finder")
        .then(pl.lit("specialisation: ") + pl.col("_specialisation_note")),
        pl.when(pl.col("ambulance_fte").is_null()).then(pl.lit("ambulance share: no staff-group data, set to 0")),
    ]
    frame = frame.with_columns(
        pl.concat_str(notes, separator="; ", ignore_nulls=True).alias("imputed"),
        (pl.col("workforce_fte").is_not_null() & (pl.col("workforce_fte") > 0)
         & (pl.col("ae_attendances_monthly").is_not_null() | pl.col("ga_beds").is_not_null())).alias("has_enough"))
    return frame.with_columns(pl.when(pl.col("imputed") == "").then(None).otherwise(pl.col("imputed")).alias("imputed"))


def transform(frame: pl.DataFrame) -> np.ndarray:
    """The pre-standardisation feature matrix (columns in FEATURES order)."""
    cols = []
    for raw, how in FEATURES.values():
        x = frame[raw].cast(pl.Float64).to_numpy()
        cols.append(np.log1p(np.clip(x, 0, None)) if how == "log1p" else x)
    return np.column_stack(cols) if cols else np.empty((frame.height, 0))


def standardise(x: np.ndarray, fit_rows: np.ndarray) -> np.ndarray:
    """z-scores using the mean and standard deviation of the fitted rows (a constant feature gets sd 1)."""
    mean = x[fit_rows].mean(axis=0)
    sd = x[fit_rows].std(axis=0)
    sd[~(sd > 0)] = 1.0
    return (x - mean) / sd


def nearest_group(z: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """1-based id of the nearest centre for each row: Euclidean over the row's known features (NaN = unknown,
    left out), scaled up to all features so rows with gaps are not favoured."""
    diff2 = (z[:, None, :] - centres[None, :, :]) ** 2
    known = (~np.isnan(z)).sum(axis=1).clip(min=1)[:, None]
    d = np.nansum(diff2, axis=2) * z.shape[1] / known
    return d.argmin(axis=1) + 1


UNIT_ORDER = ("acute_teaching", "acute_large", "acute_medium", "acute_small", "acute_specialist",
              "acute_specialist_children", "mental_health", "community", "ambulance")
SATELLITES = ("acute_multi_service", "acute_unbanded")  # placed with the nearest general acute group
GENERAL_ACUTE_UNITS = ("acute_teaching", "acute_large", "acute_medium", "acute_small")
CLUSTER_FEATURES = ("z_ae_attendances", "z_ga_beds", "z_workforce_fte", "z_deprivation", "z_specialisation")
WITHIN_K = (2, 3)
MIN_TO_CLUSTER = 20   # a type with fewer current trusts is one group (its published band)
MIN_GROUP_SIZE = 6    # no split that leaves a group smaller than this
MIN_LABEL_SPREAD = 0.5  # a feature names the groups when their centres are this many standard deviations apart
WORDS = {"size": (("larger", "smaller"), ("large", "mid-sized", "small")),
         "deprivation": (("more deprived areas", "less deprived areas"),
                         ("most deprived areas", "mid deprivation", "least deprived areas")),
         "specialisation": (("more specialised", "less specialised"),
                            ("most specialised", "mid specialisation", "least specialised"))}


def split_type(z: np.ndarray, seed: int, within_k: tuple[int, ...] = WITHIN_K) -> tuple[np.ndarray, float | None]:
    """Cluster one type's current trusts (rows of z) by KMeans: the k in within_k with the best silhouette whose
    smallest group has at least MIN_GROUP_SIZE trusts; one group (labels 0, silhouette None) when the type has
    fewer than MIN_TO_CLUSTER trusts or no split qualifies."""
    n = z.shape[0]
    best: tuple[float, np.ndarray] | None = None
    if n >= MIN_TO_CLUSTER:
        for k in within_k:
            labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(z)
            if np.bincount(labels).min() < MIN_GROUP_SIZE:
                continue
            sil = float(silhouette_score(z, labels))
            if best is None or sil > best[0]:
                best = (sil, labels)
    return (best[1], best[0]) if best else (np.zeros(n, dtype=int), None)


def group_words(centres: np.ndarray) -> list[str]:
    """Plain words for each group of one type, in the order of the centres: its size (the mean of the three size
    z-values) and the case-mix feature (deprivation or specialisation) that separates the centres most, each named
    when its centres are at least MIN_LABEL_SPREAD standard deviations apart (else only the one that separates
    them most), so "Acute teaching: small, mid deprivation" says both what differs and by what."""
    k = len(centres)
    if k < 2:
        return [""]
    feats = {"size": centres[:, :3].mean(axis=1), "deprivation": centres[:, 3], "specialisation": centres[:, 4]}
    case_mix = max(("deprivation", "specialisation"), key=lambda f: np.ptp(feats[f]))
    named = [f for f in ("size", case_mix) if np.ptp(feats[f]) >= MIN_LABEL_SPREAD]
    if not named:
        named = [max(("size", case_mix), key=lambda f: np.ptp(feats[f]))]
    out = [[] for _ in range(k)]
    for name in named:
        words = WORDS[name][0 if k == 2 else 1]
        for rank, i in enumerate(np.argsort(-feats[name], kind="stable")):
            out[i].append(words[rank])
    return [", ".join(w) for w in out]


Assignment = tuple[np.ndarray, np.ndarray, dict[int, str], dict[int, str]]


def assign_groups(frame: pl.DataFrame, z: np.ndarray, fit_rows: np.ndarray, seed: int,
                  within_k: tuple[int, ...] = WITHIN_K) -> Assignment:
    """Peer group id, assignment, label and method note for every trust: within each type (UNIT_ORDER), the
    current trusts are split by split_type; other trusts of the type join the nearest group centre of their own
    type; multi-service and unbanded acute trusts the nearest general acute group. Pure."""
    types = frame["trust_type"].to_numpy()
    enough = frame["has_enough"].to_numpy()
    cols = [list(FEATURES).index(c) for c in CLUSTER_FEATURES]
    zc = z[:, cols]
    ids = np.full(frame.height, FALLBACK_GROUP_ID, dtype=int)
    assignment = np.array(["fallback (type unknown: not in the staff survey 2024 or ERIC 2019/20)"] * frame.height,
                          dtype=object)
    labels: dict[int, str] = {FALLBACK_GROUP_ID: FALLBACK_LABEL}
    notes: dict[int, str] = {}
    centres: dict[int, np.ndarray] = {}
    next_id = 1
    for unit in UNIT_ORDER:
        members = types == unit
        if not members.any():
            continue
        fit = members & fit_rows & ~np.isnan(zc).any(axis=1)
        type_label = TYPE_LABELS[unit]
        if not fit.any():  # no current trust with data: the type is one group
            ids[members], assignment[members] = next_id, "type group (no current trust of this type to cluster)"
            labels[next_id], notes[next_id] = type_label, "one group: the published type"
            next_id += 1
            continue
        split, sil = split_type(zc[fit], seed, within_k)
        k = int(split.max()) + 1
        unit_centres = np.array([zc[fit][split == c].mean(axis=0) for c in range(k)])
        order = np.argsort(-unit_centres[:, :3].mean(axis=1), kind="stable")  # largest first
        words = group_words(unit_centres)
        remap = {}
        for c in order.tolist():
            remap[c] = next_id
            labels[next_id] = f"{type_label}: {words[c]}" if k > 1 else type_label
            notes[next_id] = (f"KMeans k={k} within the type on {', '.join(CLUSTER_FEATURES)} (seed {seed}), "
                              f"silhouette {sil:.3f}" if k > 1 else
                              f"one group: the published type ({int(fit.sum())} current trusts, fewer than "
                              f"{MIN_TO_CLUSTER} to split, or no split with groups of {MIN_GROUP_SIZE}+)")
            centres[next_id] = unit_centres[c]
            next_id += 1
        ids[fit] = [remap[c] for c in split.tolist()]
        assignment[fit] = "clustered" if k > 1 else "type group"
        rest = members & ~fit
        if k == 1:
            ids[rest], assignment[rest] = remap[0], "type group (not current: closed or no recent data)"
            continue
        placeable = rest & enough
        unit_ids = np.array([remap[c] for c in range(k)])
        if placeable.any():
            ids[placeable] = unit_ids[nearest_group(zc[placeable], unit_centres) - 1]
            assignment[placeable] = "nearest_group (not current: closed or no data in the last 12 months)"
        assignment[rest & ~enough] = "fallback (too little data to place within its type)"
    general = [g for g, text in labels.items() if any(text.startswith(TYPE_LABELS[u]) for u in GENERAL_ACUTE_UNITS)]
    sat = np.isin(types, SATELLITES)
    if general and sat.any():
        gc = np.array([centres[g] for g in general if g in centres])
        gids = np.array([g for g in general if g in centres])
        placeable = sat & enough
        if placeable.any() and len(gids):
            ids[placeable] = gids[nearest_group(zc[placeable], gc) - 1]
            assignment[placeable] = "nearest general acute group (ERIC band multi-service or none)"
        assignment[sat & ~placeable] = "fallback (too little data to place within its type)"
    return ids, assignment, labels, notes


def peer_groups_frame(raw: pl.DataFrame, seed: int = 42, within_k: tuple[int, ...] = WITHIN_K) -> pl.DataFrame:
    """The peer_groups table from the raw feature rows (pure: no database): trusts typed (trust_types.py), then
    grouped by size and case mix within their type."""
    frame = assemble_features(raw.sort("org_code"))
    frame = frame.join(classify(frame), on="org_code", how="left")
    enough = frame["has_enough"].to_numpy()
    fit_rows = enough & frame["is_current"].fill_null(False).to_numpy()
    x = transform(frame)
    if fit_rows.sum() < 2:  # too few current trusts: standardise over every trust with enough and complete data
        fit_rows = enough & ~np.isnan(x).any(axis=1)
    z = np.full_like(x, np.nan)
    if fit_rows.sum() >= 2:
        z[enough] = standardise(x, fit_rows)[enough]
    ids, assignment, names, notes = assign_groups(frame, z, fit_rows & enough, seed, within_k)
    out = frame.with_columns(
        pl.Series("peer_group_id", ids, dtype=pl.Int64),
        pl.Series("assignment", assignment.tolist(), dtype=pl.String),
        *[pl.Series(name, z[:, i], dtype=pl.Float64).fill_nan(None) for i, name in enumerate(FEATURES)])
    sizes = out.group_by("peer_group_id").agg(pl.len().cast(pl.Int64).alias("n_members"))
    k = len([g for g in set(ids.tolist()) if g != FALLBACK_GROUP_ID])
    method_text = ("Trusts typed first (staff survey 2024 group, ERIC 2019/20 band, predecessors), then grouped "
                   "within type on standardised " + ", ".join(CLUSTER_FEATURES) + " (size as log(1+x); z over "
                   "current trusts); others placed in the nearest group of their type.")
    return (out.join(sizes, on="peer_group_id", how="left")
            .with_columns(
                pl.col("peer_group_id").replace_strict(names, return_dtype=pl.String).alias("peer_group_label"),
                pl.lit("kmeans_within_type").alias("method"), pl.lit(k, dtype=pl.Int64).alias("k"),
                pl.col("peer_group_id").replace_strict(notes, default=None, return_dtype=pl.String)
                .alias("group_method"),
                pl.lit(seed, dtype=pl.Int64).alias("seed"), pl.lit(method_text).alias("method_detail"))
            .select("org_code", "org_name", "trust_type", "trust_type_label", "comparison_type", "type_source",
                    "peer_group_id", "peer_group_label", "n_members", "assignment",
                    *FEATURES, "ae_attendances_monthly", "ga_beds", "workforce_fte", "deprivation",
                    "specialisation", "specialisation_pct_rank", "ambulance_share", "imputed",
                    "method", "group_method", "k", "seed", "method_detail")
            .sort("peer_group_id", "org_code"))


def build_peer_groups(con: duckdb.DuckDBPyConnection, seed: int = 42,
                      within_k: tuple[int, ...] = WITHIN_K) -> int:
    """Write s2_triple_aim.peer_groups (one row per trust with activity) and return its row count."""
    raw = con.sql(_raw_features_sql()).pl()
    frame = peer_groups_frame(raw, seed=seed, within_k=within_k)
    n_out = con.sql(f"""select count(*) from {S1}.organisations where org_type = 'nhs_trust' and org_code not in
                        (select distinct org_code from {S1}.metric_values where org_level = 'provider')""").fetchone()[0]
    first = frame.row(0, named=True) if frame.height else {}
    log.info("peer_groups: %s trusts, method %s, %s groups, %s in fallback; %s trusts without activity "
             "left out", frame.height, first.get("method"), first.get("k"),
             frame.filter(pl.col("peer_group_id") == FALLBACK_GROUP_ID).height, n_out)
    replace_table(con, *TABLE.split("."), frame)
    return frame.height
