"""Write data/reference/organisations_supplement.csv: organisations that appear in the bundled publications
but not in the bundled ODS/ONS reference extracts (independent-sector providers, walk-in centres, CSUs,
2024 ICB boundary codes). Why: the loader quarantines rows whose organisation code the reference does not
know, which is right for new data but would drop real providers of the bundled publications. Each row says
where the code was seen. Re-run after changing the bundled data:

    .venv/bin/python scripts/build_org_supplement.py
"""
from __future__ import annotations

import csv
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import duckdb
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ibp_pipeline.config import get_paths  # noqa: E402
from ibp_pipeline.step1_current_state.ingest import files_for, known_org_codes, load_source  # noqa: E402
from ibp_pipeline.step1_current_state.reading import read_table  # noqa: E402
from ibp_pipeline.step1_current_state.sources import DATA_SOURCES, REFERENCE_SOURCES  # noqa: E402
from ibp_pipeline.step1_current_state.validation import validate  # noqa: E402

REGIONS = {"LONDON": "Y56", "SOUTH WEST": "Y58", "SOUTH EAST": "Y59", "MIDLANDS": "Y60", "EAST OF ENGLAND": "Y61",
           "NORTH WEST": "Y62", "NORTH EAST AND YORKSHIRE": "Y63"}
NAME_COLS = ("org_name", "provider_name", "icb24_name", "icb22_name", "icb_name", "ltla24_name")
REGION_COLS = ("region_code", "parent_org", "nhs_region_code")


def region_of(value: str | None) -> str | None:
    if not value:
        return None
    v = value.upper().replace("NHS ENGLAND ", "").replace(" COMMISSIONING REGION", "").replace("&", "AND").strip()
    if v.startswith("Y") and len(v) == 3:
        return v
    return REGIONS.get(v)


def main() -> None:
    out = ROOT / "data" / "reference" / "organisations_supplement.csv"
    paths = get_paths()
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "ref.duckdb"))
        ref_paths = paths.__class__(**{**paths.__dict__, "archive": Path(tmp) / "a", "landing": Path(tmp) / "l"})
        for spec in REFERENCE_SOURCES:
            if spec.name != "organisations_supplement":
                load_source(con, spec, ref_paths, run_id="supplement", log=lambda m: None)
        known = known_org_codes(con)
    found: dict[str, dict] = {}
    seen = defaultdict(set)
    for spec in DATA_SOURCES:
        if not spec.org_column:
            continue
        for path in files_for(spec, ref_paths):
            good = validate(spec, read_table(path), None).good
            cols = [c for c in (spec.org_column, *NAME_COLS, *REGION_COLS) if c in good.columns]
            rows = good.select(cols).unique(subset=[spec.org_column], keep="first")
            for r in rows.iter_rows(named=True):
                code = r[spec.org_column]
                if not code or code in known or code == spec.total_code:
                    continue
                seen[code].add(spec.name)
                entry = found.setdefault(code, {"org_name": None, "region": None})
                entry["org_name"] = entry["org_name"] or next((r[c] for c in NAME_COLS if r.get(c)), None)
                entry["region"] = entry["region"] or next((region_of(r[c]) for c in REGION_COLS if r.get(c)), None)
    with out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["org_code", "org_name", "org_type", "nhs_region_code", "icb_code", "seen_in", "note"])
        for code in sorted(found):
            e = found[code]
            kind = "icb" if code.startswith("E54") else "independent_or_other_provider"
            note = "" if e["org_name"] else "name not published in the bundled files"
            w.writerow([code, e["org_name"] or "", kind, e["region"] or "", "", ";".join(sorted(seen[code])), note])
    print(f"{len(found)} organisations written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
