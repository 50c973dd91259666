"""Step-2 trust types: what kind of trust each NHS trust is, before any clustering, and where that came from.

Why: a leader accepts peers only of the same kind. A community trust is not a "medium acute", and a children's
hospital is not a peer of a district general hospital, whatever their size. So trusts are typed first from the
published groupings, and peer groups (peers.py) and national ranks (benchmarks.py, scoring.py) stay within type.

Sources (both loaded by step 1 from data/sources):
- NHS Staff Survey 2024 (latest.staff_survey_2024, benchmarking_group): the newer grouping, used for the broad
  type: acute, acute specialist, mental health (incl. learning disability, and MH + community trusts),
  community, ambulance.
- ERIC 2019/20 (latest.estates_eric_site, trust_type): the acute size band (ACUTE - TEACHING, LARGE, MEDIUM,
  SMALL, MULTI-SERVICE, SPECIALIST), and the broad type where the staff survey has no row.
Rules, in order (type_source says which one applied):
1. broad type: staff survey group; else ERIC type; else the predecessors' (trusts merged into this one, through
   organisations.successor_code) staff-survey or ERIC types, the most common one; else 'ambulance' when at least
   AMBULANCE_MIN_SHARE of the staff are ambulance staff (staff-group FTE); else 'other'.
2. acute band (acute trusts only): ERIC's band for the trust; else the predecessors' (the largest band wins:
   teaching > large > medium > small > multi-service > specialist); else 'specialist' when the staff survey says
   "Acute Specialist Trusts"; else unbanded. The staff survey puts Alder Hey, Sheffield Children's and
   Birmingham Women's and Children's with the general acute trusts; ERIC's specialist band is kept for them.
3. specialist children's: an acute specialist trust whose name (ERIC or ODS) says "children".
comparison_type is the type national ranks are taken within: every general acute band together ('acute'),
acute specialist, specialist children's, community, mental health, ambulance, other.
"""
from __future__ import annotations

from collections import Counter

import polars as pl

S1 = "s1_current_state"
AMBULANCE_MIN_SHARE = 0.3

NSS_BROAD = {  # staff survey benchmarking_group (lower case, prefix) -> (broad type, band or None)
    "acute and acute & community": ("acute", None),
    "acute specialist": ("acute", "specialist"),
    "mental health": ("mental_health", None),
    "community trusts": ("community", None),
    "ambulance": ("ambulance", None),
}
ERIC_TYPES = {  # ERIC 2019/20 "Trust Type" -> (broad type, band or None)
    "ACUTE - TEACHING": ("acute", "teaching"), "ACUTE - LARGE": ("acute", "large"),
    "ACUTE - MEDIUM": ("acute", "medium"), "ACUTE - SMALL": ("acute", "small"),
    "ACUTE - MULTI-SERVICE": ("acute", "multi_service"), "ACUTE - SPECIALIST": ("acute", "specialist"),
    "COMMUNITY": ("community", None), "MENTAL HEALTH AND LEARNING DISABILITY": ("mental_health", None),
    "CARE TRUST": ("mental_health", None), "AMBULANCE": ("ambulance", None),
}
BAND_ORDER = ("teaching", "large", "medium", "small", "multi_service", "specialist")
BROAD_ORDER = ("acute", "mental_health", "community", "ambulance")

TYPE_LABELS = {
    "acute_teaching": "Acute teaching", "acute_large": "Acute large", "acute_medium": "Acute medium",
    "acute_small": "Acute small", "acute_multi_service": "Acute multi-service (acute with community services)",
    "acute_unbanded": "Acute (no published size band)", "acute_specialist": "Acute specialist",
    "acute_specialist_children": "Specialist children's", "community": "Community", "mental_health": "Mental health",
    "ambulance": "Ambulance", "other": "Other or unknown type",
}
COMPARISON_LABELS = {
    "acute": "general acute trusts", "acute_specialist": "acute specialist trusts",
    "acute_specialist_children": "specialist children's trusts", "community": "community trusts",
    "mental_health": "mental health trusts", "ambulance": "ambulance trusts",
    "other": "trusts of other or unknown type",
}
GENERAL_ACUTE = ("acute_teaching", "acute_large", "acute_medium", "acute_small", "acute_multi_service",
                 "acute_unbanded")


def nss_type(group: str | None) -> tuple[str, str | None] | None:
    """(broad type, band) for a staff survey benchmarking group; None for groups that are not NHS trusts."""
    if not group:
        return None
    g = group.strip().lower()
    for prefix, value in NSS_BROAD.items():
        if g.startswith(prefix):
            return value
    return None


def eric_type(trust_type: str | None) -> tuple[str, str | None] | None:
    """(broad type, band) for an ERIC trust type; None when absent or unknown."""
    return ERIC_TYPES.get((trust_type or "").strip().upper())


def comparison_type(trust_type: str) -> str:
    """The type national ranks are taken within: the general acute bands together, every other type alone."""
    return "acute" if trust_type in GENERAL_ACUTE else trust_type


def _split(text: str | None) -> list[str]:
    return [t for t in (text or "").split("|") if t]


def classify_row(row: dict) -> tuple[str, str]:
    """(trust_type, type_source) for one trust from its inputs (see trust_type_inputs_sql). Pure."""
    nss, eric = nss_type(row.get("nss_group")), eric_type(row.get("eric_type"))
    preds = row.get("type_predecessors") or row.get("predecessors")
    pred_nss = [t for t in (nss_type(g) for g in _split(row.get("pred_nss_groups"))) if t]
    pred_eric = [t for t in (eric_type(g) for g in _split(row.get("pred_eric_types"))) if t]
    if nss:
        broad, source = nss[0], f"staff survey 2024 group '{row['nss_group']}'"
    elif eric:
        broad, source = eric[0], f"ERIC 2019/20 type '{row['eric_type']}'"
    elif pred_nss or pred_eric:
        counts = Counter(t[0] for t in (pred_nss or pred_eric))
        broad = max(counts, key=lambda b: (counts[b], -BROAD_ORDER.index(b)))
        source = f"predecessor trusts ({preds}): " + (
            "staff survey 2024" if pred_nss else "ERIC 2019/20")
    elif (row.get("ambulance_share") or 0.0) >= AMBULANCE_MIN_SHARE:
        return "ambulance", f"ambulance staff share {row['ambulance_share']:.0%} (no published type)"
    else:
        return "other", "no published type (not in the staff survey 2024 or ERIC 2019/20, nor its predecessors)"
    if broad != "acute":
        return broad, source
    bands = [t[1] for t in pred_eric if t[0] == "acute" and t[1]]
    if eric and eric[0] == "acute" and eric[1]:
        band, band_source = eric[1], "" if source.startswith("ERIC") else f"ERIC 2019/20 band '{row['eric_type']}'"
    elif bands:
        band = min(bands, key=BAND_ORDER.index)
        band_source = f"predecessors' ERIC 2019/20 band ({preds})"
    elif nss and nss[1]:
        band, band_source = nss[1], "staff survey 2024 group"
    else:
        return "acute_unbanded", source + "; no ERIC size band"
    if band == "specialist" and "CHILDREN" in " ".join(
            str(row.get(k) or "") for k in ("eric_name", "org_name")).upper().replace("'", ""):
        band = "specialist_children"
        band_source = (band_source or f"ERIC 2019/20 band '{row['eric_type']}'") + " and a children's trust by name"
    keep = band_source in ("", "staff survey 2024 group")
    return f"acute_{band}", source if keep else f"{source}; {band_source}"


def classify(inputs: pl.DataFrame) -> pl.DataFrame:
    """org_code, trust_type, trust_type_label, comparison_type, type_source for every input row. Pure."""
    rows = [(r["org_code"], *classify_row(r)) for r in inputs.iter_rows(named=True)]
    frame = pl.DataFrame(rows, schema={"org_code": pl.String, "trust_type": pl.String, "type_source": pl.String},
                         orient="row")
    return frame.with_columns(
        pl.col("trust_type").replace_strict(TYPE_LABELS, return_dtype=pl.String).alias("trust_type_label"),
        pl.col("trust_type").map_elements(comparison_type, return_dtype=pl.String).alias("comparison_type"),
    ).select("org_code", "trust_type", "trust_type_label", "comparison_type", "type_source")


def trust_type_inputs_sql() -> str:
    """One row per NHS trust: its staff survey group, ERIC type and name, and its predecessors' ('|'-joined)."""
    return f"""
    with nss as (
        select upper(trim(org_code)) as org_code, any_value(benchmarking_group) as nss_group
        from latest.staff_survey_2024 group by 1),
    eric as (
        select upper(trim(org_code)) as org_code, mode(trust_type) as eric_type, any_value(org_name) as eric_name
        from latest.estates_eric_site group by 1),
    pred as (
        select o.successor_code as org_code, string_agg(o.org_code, ', ' order by o.org_code) as predecessors,
               string_agg(nss.nss_group, '|' order by o.org_code) as pred_nss_groups,
               string_agg(eric.eric_type, '|' order by o.org_code) as pred_eric_types
        from {S1}.organisations o
        left join nss using (org_code) left join eric using (org_code)
        where o.successor_code is not null and o.successor_code <> o.org_code
        group by 1)
    select o.org_code, o.org_name, nss.nss_group, eric.eric_type, eric.eric_name, pred.predecessors,
           pred.pred_nss_groups, pred.pred_eric_types
    from {S1}.organisations o
    left join nss using (org_code) left join eric using (org_code) left join pred using (org_code)
    where o.org_type = 'nhs_trust'"""
