"""Copy the real NHS publications the pipeline runs on from ../shared/data/nhs into data/sources/.

Why: a user's clone has no ../shared, so what the pipeline runs on by default is committed here, compact.
The official monthly A&E files stay as published (plain CSV, NHS England's own layout), because that is the
file an analyst downloads each month; everything else is gzip-compressed CSV (read natively by the loaders).
Each folder keeps its SOURCE.txt (publisher, licence, period, caveats). Re-run after the shared data changes:

    .venv/bin/python scripts/bundle_data.py ../shared/data/nhs
"""
from __future__ import annotations

import gzip
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEEP_PLAIN = {"ae_monthly_provider_official"}


def bundle(shared: Path, dest: Path) -> int:
    """Copy every dataset folder; return the number of bytes written."""
    total = 0
    for folder in sorted(p for p in shared.iterdir() if p.is_dir()):
        out = dest / folder.name
        out.mkdir(parents=True, exist_ok=True)
        for f in sorted(folder.iterdir()):
            if f.suffix == ".csv" and folder.name not in KEEP_PLAIN:
                target = out / (f.name + ".gz")
                with f.open("rb") as src, gzip.GzipFile(target, "wb", compresslevel=9, mtime=0) as gz:
                    shutil.copyfileobj(src, gz)
            else:
                target = out / f.name
                shutil.copyfile(f, target)
            total += target.stat().st_size
    return total


if __name__ == "__main__":
    shared = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "nhs")
    size = bundle(shared, ROOT / "data" / "sources")
    print(f"bundled {size / 1e6:.1f} MB into data/sources")
