"""Benchmark: what an analyst waits for, old code against new in one sitting (machines here are noisy: read the
ratios). Three figures, each `ibp run` as a user types it, in a fresh data folder per version:

  first   the first run after install on the bundled data (everything built);
  again   a second run with nothing new;
  month   one new month of A&E dropped into landing (the bundled December 2024 file relabelled January 2026),
          then `ibp run`.

The old version is checked out with `git worktree` and run with the same Python (its package first on the path),
so only the code differs. Both use the product's draws unless --draws says otherwise.

    .venv/bin/python benchmarks/bench_refresh.py --old REV [--draws 10000] [--keep]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DECEMBER = "data/sources/ae_monthly_provider_official/Monthly-AE-December-2024.csv"


def ibp(code: Path, data: Path, draws: int, log: Path) -> float:
    """`ibp run` of the package at `code` on the data folder; seconds it took (fails loudly on failure)."""
    env = {**os.environ, "IBP_DATA_DIR": str(data), "IBP_DRAWS": str(draws), "PYTHONPATH": str(code)}
    started = time.perf_counter()
    with log.open("a") as out:
        done = subprocess.run([sys.executable, "-m", "ibp_pipeline.cli", "run"], cwd=code, env=env, stdout=out,
                              stderr=subprocess.STDOUT)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"ibp run failed for {code} (exit {done.returncode}); see {log}")
    return took


def measure(code: Path, work: Path, draws: int) -> dict[str, float]:
    data = work / "data"
    log = work / "ibp.log"
    first = ibp(code, data, draws, log)
    again = ibp(code, data, draws, log)
    landing = data / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    text = (code / DECEMBER).read_text()
    (landing / "Monthly-AE-January-2026.csv").write_text(text.replace("MSitAE-DECEMBER-2024", "MSitAE-JANUARY-2026"))
    month = ibp(code, data, draws, log)
    return {"first": first, "again": again, "month": month}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--old", required=True, help="the commit to compare against (e.g. the one before a change)")
    parser.add_argument("--draws", type=int, default=10_000)
    parser.add_argument("--keep", action="store_true", help="keep the work folders (logs, data) afterwards")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_refresh_"))
    old = work / "old_code"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), args.old], check=True,
                   capture_output=True)
    try:
        label = subprocess.run(["git", "-C", str(old), "log", "-1", "--format=%h %s"], capture_output=True,
                               text=True).stdout.strip()
        print(f"old: {label}\nnew: working tree of {ROOT}\ndraws: {args.draws:,}; cores: {os.cpu_count()}",
              flush=True)
        results = {}
        for name, code in (("old", old), ("new", ROOT)):
            (work / name).mkdir()
            results[name] = measure(code, work / name, args.draws)
            print(f"{name}: " + ", ".join(f"{k} {v:.1f} s" for k, v in results[name].items()), flush=True)
        print(f"\n{'':28}{'old':>9}{'new':>9}{'new/old':>9}")
        words = {"first": "first run after install", "again": "second run, nothing new",
                 "month": "one new A&E month"}
        for k, text in words.items():
            o, n = results["old"][k], results["new"][k]
            print(f"{text:<28}{o:>8.1f}s{n:>8.1f}s{n / o:>9.2f}")
        print(f"\nlogs: {work}/old/ibp.log, {work}/new/ibp.log" if args.keep else "")
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], capture_output=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
