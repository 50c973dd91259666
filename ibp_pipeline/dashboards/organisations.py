"""The organisations a reader can pick, and the months that have data, for the global selector."""
from __future__ import annotations

import polars as pl

from .serving import Serving

LEVEL_LABELS = {"england": "England", "region": "Region", "icb": "ICB", "provider": "Trust"}
LEVEL_ORDER = {"england": 0, "region": 1, "icb": 2, "provider": 3}
_SMALL = {"and", "of", "the", "for", "on", "in", "at", "upon"}
_UPPER = {"nhs", "icb", "uk", "ii", "gp", "bmi", "nhsft"}


def plain_name(name: str | None) -> str:
    """'NHS BLACKPOOL TEACHING HOSPITALS NHS FOUNDATION TRUST' -> 'NHS Blackpool Teaching Hospitals NHS Foundation
    Trust': ODS names are upper case; leaders read names in title case with NHS kept as an acronym."""
    if not name:
        return ""
    words = []
    for i, word in enumerate(name.split()):
        low = word.lower()
        if low in _UPPER:
            words.append(word.upper())
        elif i and low in _SMALL:
            words.append(low)
        else:
            words.append("-".join(part[:1].upper() + part[1:] for part in low.split("-")))
    return " ".join(words)


def selector_options(db: Serving) -> pl.DataFrame:
    """England, the regions, the ICBs and every provider with published metrics, in that order.

    Columns: org_code, org_name, org_level, org_type, parent_icb_code, region_code, label."""
    frame = db.query("""
        with levels as (
            select org_code, any_value(org_level) as org_level
            from s1_current_state.metric_values group by org_code)
        select o.org_code, o.org_name, l.org_level, o.org_type, o.parent_icb_code, o.region_code
        from levels l join s1_current_state.organisations o using (org_code)
        where (o.close_date is null or l.org_level <> 'provider')
          and (o.org_type <> 'icb' or o.valid_to is null)  -- the ICBs of today; the 42 of 2022-2026 are history
    """)
    kind = (pl.when(pl.col("org_type") == "independent_or_other_provider").then(pl.lit("Other provider"))
            .otherwise(pl.col("org_level").replace_strict(LEVEL_LABELS, default="Other")))
    return (frame.with_columns(
        (pl.col("org_level").replace_strict(LEVEL_ORDER, default=9)
         + (pl.col("org_type") == "independent_or_other_provider").cast(pl.Int64)).alias("_order"),
        pl.col("org_name").fill_null(pl.col("org_code"))
        .map_elements(plain_name, return_dtype=pl.String).alias("org_name"))
        .with_columns(pl.when(pl.col("org_level") == "england").then(pl.lit("England"))
                      .otherwise(pl.format("{} · {} ({})", kind, pl.col("org_name"), pl.col("org_code")))
                      .alias("label"))
        .sort("_order", "org_name").drop("_order"))


def months_with_data(db: Serving, org_code: str) -> list:
    """Every month that has at least one published value for this organisation, oldest first."""
    return db.query("select distinct period_start from s1_current_state.metric_values where org_code = ? "
                    "and period_grain = 'month' order by 1", [org_code])["period_start"].to_list()
