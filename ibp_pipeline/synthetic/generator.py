"""Write a synthetic dataset: DIR/sources/<folder>/<files>, DIR/reference/organisations_supplement.csv,
DIR/README.txt, a SOURCE.txt in every folder and DIR/synthetic_manifest.json (parameters, every file, every
injected bad row with its line number and the quarantine rows the pipeline should produce for it).

Bad rows (--bad-rows, a fraction of data rows; the organisation reference is never touched), each of a kind the
pipeline quarantines: text in a number column ('not_a_number'), a negative count ('negative_count'), an
organisation code no reference knows ('unknown_org', codes ZU...), an exact duplicate row ('duplicate_row', the
first copy loads). Monthly files get a binomial number of them; every compiled file gets at least one when the
fraction is above zero, so each kind always appears. An A&E file with a bad provider row also has its TOTAL row
set aside by the pipeline ('total_not_verifiable'), counted in expected_quarantined_rows.
"""
from __future__ import annotations

import gzip
import json
import shlex
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import polars as pl

from ..config import PROJECT_ROOT
from ..step1_current_state.sources import BY_NAME, SOURCES, norm_header
from . import publications as pub
from .model import DEFAULT_END, DEFAULT_MERGERS, EPOCH, S_BAD, SCALES, build_latent, build_universe, month_abs, \
    month_date, rng_for

MANIFEST = "synthetic_manifest.json"
BAD_KINDS = ("not_a_number", "negative_count", "unknown_org", "duplicate_row")
TEXT_VALUES = ("#REF!", "12O4", "approx 340", "see note", "1.2.3", "n.k.")
DEFAULT_SEED = 20250331
Log = Callable[[str], None]


class SynthError(Exception):
    """A one-line reason the generator will not run (bad parameters, a refused output folder)."""


@dataclass(frozen=True)
class SynthConfig:
    scale: str = "england"
    years: int = 10
    seed: int = DEFAULT_SEED
    bad_rows: float = 0.001
    mergers: int | None = None  # None: the scale's default (icb 1, region 2, england 4)
    end: str = DEFAULT_END  # last month, YYYY-MM

    def check(self) -> None:
        if self.scale not in SCALES:
            raise SynthError(f"--scale must be one of {', '.join(SCALES)}, got {self.scale!r}")
        if not 1 <= self.years <= 25:
            raise SynthError(f"--years must be between 1 and 25, got {self.years}")
        if not 0 <= self.bad_rows <= 0.2:
            raise SynthError(f"--bad-rows is a fraction between 0 and 0.2, got {self.bad_rows}")
        if self.mergers is not None and not 0 <= self.mergers <= 8:
            raise SynthError(f"--mergers must be between 0 and 8, got {self.mergers}")
        try:
            end = month_abs(self.end)
            ok = len(self.end) == 7 and 1 <= int(self.end[5:]) <= 12
        except ValueError:
            ok = False
        if not ok or not 2005 * 12 <= end <= 2035 * 12:
            raise SynthError(f"--end must be a month YYYY-MM between 2005-01 and 2035-01, got {self.end!r}")
        if end - 12 * self.years + 1 < EPOCH:
            raise SynthError(f"--years {self.years} back from {self.end} starts before {month_date(EPOCH):%Y-%m}, "
                             "where the synthetic series begin")


@dataclass
class FileRecord:
    path: str  # relative to the output folder
    source: str
    rows: int  # data rows written (bad rows included)
    bytes: int
    bad_rows: list[dict] = field(default_factory=list)  # {line, kind, column, value}
    expected_quarantined_rows: int = 0
    total_row_line: int | None = None  # line of a TOTAL row the pipeline will set aside


@dataclass
class SynthResult:
    out: Path
    config: SynthConfig
    files: list[FileRecord]
    counts: dict[str, int]
    mergers: list[dict]
    seconds: float

    @property
    def bad_rows(self) -> int:
        return sum(len(f.bad_rows) for f in self.files)

    @property
    def expected_quarantined_rows(self) -> int:
        return sum(f.expected_quarantined_rows for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def run_command(self) -> str:
        q = lambda p: shlex.quote(str(self.out / p))  # noqa: E731
        return f"IBP_DATA_DIR={q('run')} IBP_SOURCES_DIR={q('sources')} IBP_REFERENCE_DIR={q('reference')} ibp run"


# ---- output folder --------------------------------------------------------------------------------------------
def check_out_dir(out: str | Path) -> Path:
    """The resolved output folder, or SynthError: never inside the project's data/ folder (synthetic data must
    not mix with real outputs), and never a non-empty folder that ibp synth did not write."""
    path = Path(out).expanduser().resolve()
    data = (PROJECT_ROOT / "data").resolve()
    if path == data or data in path.parents:
        raise SynthError(f"refusing to write synthetic data into the project's data folder ({data}); "
                         "synthetic data is never mixed with real outputs: choose another folder, e.g. /tmp/ibp-synth")
    if path.exists() and not path.is_dir():
        raise SynthError(f"{path} exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not (path / MANIFEST).exists():
        raise SynthError(f"{path} is not empty and was not written by ibp synth (no {MANIFEST}); choose an empty "
                         "or new folder")
    return path


# ---- bad rows -------------------------------------------------------------------------------------------------
def _header(frame: pl.DataFrame, spec_header: str) -> str | None:
    want = norm_header(spec_header)
    return next((c for c in frame.columns if norm_header(c) == want), None)


def inject_bad_rows(f: pub.OutFile, fraction: float, seed: int, forced_kind: str | None = None
                    ) -> tuple[pl.DataFrame, list[dict], int | None]:
    """The frame with bad rows injected, one record per bad row (final line number, kind, column, value) and the
    line of the file's TOTAL row when the pipeline will set it aside."""
    frame = f.frame
    if not f.inject or fraction <= 0 or frame.height == 0:
        return frame, [], None
    spec = BY_NAME[f.source]
    counts = [h for c in spec.columns if c.kind == "count" and (h := _header(frame, c.header))]
    numbers = counts + [h for c in spec.columns if c.kind == "number" and (h := _header(frame, c.header))]
    org = _header(frame, spec.column(spec.org_column).header) if spec.org_column else None
    source_no = [s.name for s in SOURCES].index(f.source)
    r = rng_for(seed, S_BAD, source_no * 100_000 + f.key_month)
    eligible = np.arange(frame.height)
    if f.total_code and org:
        eligible = np.flatnonzero(frame[org].to_numpy() != f.total_code)
    k = int(r.binomial(len(eligible), fraction))
    if forced_kind is not None:
        k = max(k, 1)
    k = min(k, len(eligible))
    if k == 0:
        return frame, [], None
    rows = np.sort(r.choice(eligible, size=k, replace=False))
    kinds = list(r.choice(BAD_KINDS, size=k))
    if forced_kind is not None:
        kinds[int(r.integers(0, k))] = forced_kind
    edits: dict[str, dict[int, str]] = {}
    records: list[tuple[float, dict]] = []
    dups: list[int] = []
    for pos, kind in zip(rows.tolist(), kinds):
        if kind == "unknown_org" and not org:
            kind = "not_a_number"
        if kind in ("not_a_number", "negative_count"):
            col = str(r.choice(numbers if kind == "not_a_number" else counts))
            if kind == "not_a_number":
                value = str(r.choice(TEXT_VALUES))
            else:
                cell = frame[col].cast(pl.Utf8)[pos]
                value = f"-{cell}" if cell not in (None, "", "0", "0.0") and not str(cell).startswith("-") else "-1"
        elif kind == "unknown_org":
            col, value = org, f"ZU{int(r.integers(100, 1000))}"
            named = _header(frame, spec.column(spec.org_name_column).header) if spec.org_name_column else None
            if named:  # an official file names its organisations: only a code with no name is bad data
                edits.setdefault(named, {})[pos] = ""
        else:
            dups.append(pos)
            records.append((pos + 0.5, {"kind": kind, "column": None, "value": None}))
            continue
        edits.setdefault(col, {})[pos] = value
        records.append((float(pos), {"kind": kind, "column": col, "value": value}))
    for col, cells in edits.items():
        s = frame[col].cast(pl.Utf8).scatter(list(cells), list(cells.values()))
        frame = frame.with_columns(s.alias(col))
    order = pl.Series("_ord", np.arange(frame.height, dtype=np.float64))
    frame = frame.with_columns(order)
    if dups:
        frame = pl.concat([frame, frame[dups].with_columns(pl.col("_ord") + 0.5)]).sort("_ord")
    line_of = {o: i + 2 for i, o in enumerate(frame["_ord"].to_list())}  # header is line 1
    total_line = None
    if f.total_code and org:
        total_pos = [i for i, c in enumerate(f.frame[org].to_list()) if c == f.total_code]
        total_line = line_of[float(total_pos[0])] if total_pos else None
    bad = [{"line": line_of[o], **rec} for o, rec in sorted(records, key=lambda x: x[0])]
    return frame.drop("_ord"), bad, total_line


# ---- writing --------------------------------------------------------------------------------------------------
def write_csv(frame: pl.DataFrame, path: Path, compress: bool) -> int:
    """CSV (UTF-8, header line 1), gzip-compressed when asked, byte-for-byte reproducible (no gzip timestamp)."""
    data = frame.write_csv().encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        with path.open("wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0, compresslevel=6) as z:
            z.write(data)
    else:
        path.write_bytes(data)
    return path.stat().st_size


def _source_txt(folder: str, cfg: SynthConfig, files: list[FileRecord]) -> str:
    sources = sorted({f.source for f in files})
    rows = sum(f.rows for f in files)
    bad = sum(len(f.bad_rows) for f in files)
    return (f"Dataset: {folder} (SYNTHETIC)\n"
            "THIS IS SYNTHETIC DATA. It is not an NHS publication and describes no real organisation, patient or "
            "member of staff.\n"
            f"Generated by: ibp synth --scale {cfg.scale} --years {cfg.years} --seed {cfg.seed} --bad-rows "
            f"{cfg.bad_rows} --mergers {cfg.mergers if cfg.mergers is not None else DEFAULT_MERGERS[cfg.scale]} "
            f"--end {cfg.end}\n"
            f"Layout: the layout of the real publication the pipeline's registry reads for {', '.join(sources)} "
            "(ibp_pipeline/step1_current_state/sources.py)\n"
            f"Files: {len(files)}; data rows: {rows:,}; injected bad rows: {bad:,} (listed in {MANIFEST})\n")


def _readme(result: SynthResult) -> str:
    cfg = result.config
    c = result.counts
    lines = [
        "SYNTHETIC DATA - NOT REAL NHS STATISTICS",
        "",
        "Everything under this folder was generated by `ibp synth` (ibp_pipeline/synthetic). No file here is an NHS",
        "publication; every organisation is invented (codes ZS... trusts, ZP... independent providers, QZ.. ICBs,",
        "YZ. regions; names start with 'SYNTHETIC'). Never copy these files into the project's data/ folder or mix",
        "them with real outputs.",
        "",
        f"Parameters: scale {cfg.scale}, years {cfg.years}, end month {cfg.end}, seed {cfg.seed}, bad-row fraction "
        f"{cfg.bad_rows}, mergers {len(result.mergers)}",
        f"Command: ibp synth --scale {cfg.scale} --years {cfg.years} --seed {cfg.seed} --bad-rows {cfg.bad_rows} "
        f"--mergers {cfg.mergers if cfg.mergers is not None else DEFAULT_MERGERS[cfg.scale]} --end {cfg.end} --out DIR",
        f"Organisations: {c['regions']} regions, {c['icbs']} ICBs, {c['trusts_current']} NHS trusts open at the end "
        f"({c['trusts_all']} including merged ones), {c['independent_providers']} independent-sector providers",
        f"Files: {len(result.files)}, {result.bytes / 1e6:,.1f} MB; injected bad rows: {result.bad_rows:,} "
        f"(expected quarantined rows: {result.expected_quarantined_rows:,})",
        "",
        "Layout: sources/<folder>/<files> in the layouts of the real publications (the same folders, file names and",
        "column headers the registry in ibp_pipeline/step1_current_state/sources.py reads); reference/ holds",
        "organisations_supplement.csv (the independent-sector providers); synthetic_manifest.json lists every file,",
        "every injected bad row (file, line, kind, column) and the seed and parameters.",
        "",
        "Run the pipeline on it (writes only under run/):",
        f"  {result.run_command()}",
        "",
        "Sources generated:",
        *[f"  {k}: {v}" for k, v in pub.GENERATED.items()],
        "Sources omitted (the pipeline runs without them):",
        *[f"  {k}: {v}" for k, v in pub.OMITTED.items()],
    ]
    return "\n".join(lines) + "\n"


def _builders(u, L, window) -> Iterable[Callable[[], Iterable[pub.OutFile]]]:
    return (
        lambda: pub.reference_files(u), lambda: pub.supplement_file(u), lambda: pub.population_files(u),
        lambda: pub.peer_finder_file(u, L), lambda: pub.ncc_file(u), lambda: pub.estates_file(u),
        lambda: pub.ae_files(u, L, window), lambda: pub.rtt_files(u, L, window), lambda: pub.dm01_files(u, L, window),
        lambda: pub.rtt_flows_file(u, L, window), lambda: pub.cancer_file(u, L, window),
        lambda: pub.workforce_file(u, L, window), lambda: pub.beds_file(u, L, window),
        lambda: pub.kh03_file(u, L, window), lambda: pub.discharge_file(u, L, window),
        lambda: pub.virtual_wards_file(u, L, window))


def generate(config: SynthConfig, out: str | Path, log: Log = print) -> SynthResult:
    """Generate the dataset into `out` (see the module docstring); deterministic for a given config."""
    config.check()
    out_dir = check_out_dir(out)
    started = time.time()
    if (out_dir / MANIFEST).exists():  # re-generation: replace what an earlier run wrote, keep run/ (a warehouse)
        for sub in ("sources", "reference"):
            shutil.rmtree(out_dir / sub, ignore_errors=True)
        (out_dir / MANIFEST).unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    end = month_abs(config.end)
    window = list(range(end - 12 * config.years + 1, end + 1))
    u = build_universe(config.scale, config.seed, end, config.mergers)
    L = build_latent(u)
    log(f"ibp synth: SYNTHETIC {config.scale} dataset, {len(u.regions)} regions, {len(u.icbs)} ICBs, "
        f"{len(u.current_trusts())} trusts ({len(u.mergers)} mergers), {month_date(window[0]):%Y-%m} to "
        f"{month_date(window[-1]):%Y-%m}, seed {config.seed} -> {out_dir}")
    records: list[FileRecord] = []
    compiled_no = 0
    for build in _builders(u, L, window):
        t0 = time.time()
        batch: list[FileRecord] = []
        for f in build():
            forced = None
            if f.inject and f.key_month == 0 and config.bad_rows > 0:
                forced = BAD_KINDS[compiled_no % len(BAD_KINDS)]
                compiled_no += 1
            frame, bad, total_line = inject_bad_rows(f, config.bad_rows, config.seed, forced)
            rel = Path("reference" if f.folder == "@reference" else f"sources/{f.folder}") / f.file_name
            size = write_csv(frame, out_dir / rel, f.gzip)
            aside = total_line if bad and total_line else None
            batch.append(FileRecord(str(rel), f.source, frame.height, size, bad, len(bad) + (1 if aside else 0),
                                    aside))
        records += batch
        for source in dict.fromkeys(b.source for b in batch):
            part = [b for b in batch if b.source == source]
            n_bad = sum(len(b.bad_rows) for b in part)
            where = part[0].path if len(part) == 1 else f"{Path(part[0].path).parent}/ ({len(part)} files)"
            log(f"  {source:<26} {where}: {sum(b.rows for b in part):,} rows"
                + (f", {n_bad} bad rows injected" if n_bad else "") + f" ({time.time() - t0:.1f}s)")
    for folder in sorted({str(Path(r.path).parent) for r in records}):
        files = [r for r in records if str(Path(r.path).parent) == folder]
        (out_dir / folder / "SOURCE.txt").write_text(_source_txt(Path(folder).name, config, files))
    counts = {"regions": len(u.regions), "icbs": len(u.icbs), "trusts_current": len(u.current_trusts()),
              "trusts_all": sum(1 for o in u.orgs if o.is_trust),
              "independent_providers": sum(1 for o in u.orgs if not o.is_trust),
              "months": len(window)}
    mergers = [{"date": m.date.isoformat(), "old": list(m.old), "new": m.new, "kind": m.kind} for m in u.mergers]
    result = SynthResult(out_dir, config, records, counts, mergers, time.time() - started)
    (out_dir / "README.txt").write_text(_readme(result))
    manifest = {
        "synthetic": True, "generator": "ibp synth (ibp_pipeline.synthetic)", "parameters": asdict(config),
        "first_month": month_date(window[0]).isoformat(), "last_month": month_date(window[-1]).isoformat(),
        "counts": counts, "mergers": mergers, "bad_rows": result.bad_rows,
        "expected_quarantined_rows": result.expected_quarantined_rows, "bytes": result.bytes,
        "run_command": result.run_command(), "files": [asdict(r) for r in records]}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    result.seconds = time.time() - started
    return result
