"""The synthetic health system: calendar, national trajectories, organisations and each provider's monthly
latent series. Pure numpy; nothing here writes files (publications.py turns this into published layouts).

Determinism and stability
- Every random draw comes from a numpy Generator seeded with (seed, stream, key), where the key is an
  organisation's serial number or an absolute month, never a window position. Each organisation's monthly
  noise is drawn from a fixed epoch (January 2000) up to the end month, so the value of an (organisation, month)
  does not depend on --years: generating again with a later --end gives byte-identical monthly files for the
  months both runs share (what an incremental-refresh benchmark needs).
- National trajectories are piecewise-linear in calendar time (knots below, roughly the shape of the real
  England series: the 2015-2019 decline, the COVID-19 collapse and recovery, winter pressure), then each
  provider gets persistent offsets (size, case mix, deprivation) and AR(1) noise.
- Mergers happen on fixed 1 April dates (2024, 2023, 2022, ...), whatever the window, and only when the date is
  not after the end month. A merging trust keeps its own latent series; from the merger month its figures are
  reported under the successor's code (summed with its partner), as a merged trust's returns are.

Organisation codes are synthetic and cannot be real ODS codes: trusts ZS001..., independent providers ZP001...,
ICBs QZ01..., sub-ICB locations Z01A..., regions YZ1..YZ7, ONS codes E54900xxx / E40900xxx / E38900xxx; names
start with 'SYNTHETIC '. Codes ZU... are kept for the unknown organisations of injected bad rows.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

EPOCH = 2000 * 12  # absolute month index of January 2000: all noise is drawn from here
DEFAULT_END = "2025-03"  # the bundled publications' common last month; standards' trajectories start from it
MERGER_YEARS = (2024, 2023, 2022, 2021, 2020, 2019, 2018, 2017)  # merger i happens on 1 April of year i
SCALES = ("icb", "region", "england")
DEFAULT_MERGERS = {"icb": 1, "region": 2, "england": 4}

# Stream ids: one per use of randomness, so adding a stream never shifts another.
S_UNIVERSE, S_UNIT, S_AE, S_RTT, S_DM01, S_CANCER, S_BEDS, S_WORKFORCE, S_DISCHARGE = range(1, 10)
S_VW, S_FLOWS, S_POP, S_PEERS, S_ESTATES, S_BAD, S_NCC, S_KH03 = range(10, 18)


# ---- calendar ---------------------------------------------------------------------------------------------
def month_abs(text: str) -> int:
    """'2025-03' -> absolute month index (year * 12 + month - 1)."""
    y, m = text.split("-")[:2]
    return int(y) * 12 + int(m) - 1


def month_date(a: int) -> date:
    return date(a // 12, a % 12 + 1, 1)


def month_end(a: int) -> date:
    d = month_date(a)
    return d.replace(day=calendar.monthrange(d.year, d.month)[1])


def days_in(a: int) -> int:
    return calendar.monthrange(a // 12, a % 12 + 1)[1]


def _knots(points: list[tuple[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    xs = np.array([month_abs(p if "-" in p else f"{p}-01") for p, _ in points], dtype=float)
    return xs, np.array([v for _, v in points], dtype=float)


def trajectory(points: list[tuple[str, float]], months: np.ndarray) -> np.ndarray:
    xs, ys = _knots(points)
    return np.interp(months.astype(float), xs, ys)


def seasonal(by_month: dict[int, float], months: np.ndarray, default: float = 0.0) -> np.ndarray:
    table = np.array([by_month.get(m, default) for m in range(1, 13)])
    return table[months % 12]


# ---- national trajectories (England-shaped; values per million population are per month) -------------------
AE_T1_PER_M = [("2000", 19_500), ("2015-04", 21_500), ("2019-12", 23_500), ("2025-03", 24_500), ("2035", 26_000)]
AE_T3_PER_M = [("2000", 9_000), ("2015-04", 12_500), ("2019-12", 14_500), ("2025-03", 16_500), ("2035", 18_000)]
AE_T1_PCT = [("2000", 93), ("2010", 96.5), ("2013", 93.5), ("2015-04", 90), ("2016-04", 87), ("2018-04", 84.5),
             ("2019-12", 78), ("2020-04", 91), ("2020-08", 88), ("2021-06", 77), ("2022-10", 61), ("2023-06", 66),
             ("2024-01", 62), ("2024-12", 62), ("2025-03", 64), ("2035", 70)]
AE_T3_PCT = [("2000", 98.5), ("2019", 98), ("2021-06", 95.5), ("2025-03", 95), ("2035", 96)]
AE_WINTER = {12: -4.5, 1: -5.0, 2: -3.0, 3: -1.5, 11: -2.0, 10: -0.5, 4: 0.5, 5: 1.5, 6: 2.0, 7: 1.0, 8: 1.5}
AE_VOLUME_SEASON = {1: 0.93, 2: 0.96, 3: 1.0, 4: 1.0, 5: 1.05, 6: 1.06, 7: 1.06, 8: 1.0, 9: 1.0, 10: 1.0, 11: 0.98,
                    12: 0.96}
COVID_AE = {"2020-03": 0.78, "2020-04": 0.45, "2020-05": 0.62, "2020-06": 0.74, "2020-07": 0.82, "2020-08": 0.86,
            "2020-09": 0.88, "2020-10": 0.86, "2020-11": 0.78, "2020-12": 0.80, "2021-01": 0.68, "2021-02": 0.74,
            "2021-03": 0.90, "2021-04": 0.96}
COVID_ELECTIVE = {"2020-03": 0.85, "2020-04": 0.35, "2020-05": 0.45, "2020-06": 0.60, "2020-07": 0.72,
                  "2020-08": 0.78, "2020-09": 0.86, "2020-10": 0.88, "2020-11": 0.85, "2020-12": 0.85,
                  "2021-01": 0.70, "2021-02": 0.78, "2021-03": 0.92}
ADMIT_RATE = [("2000", 0.25), ("2015", 0.27), ("2019-12", 0.28), ("2020-04", 0.36), ("2020-09", 0.30),
              ("2025-03", 0.30)]
DTA12_SHARE = [("2000", 0.0003), ("2015-04", 0.001), ("2019-06", 0.006), ("2020-05", 0.0008), ("2021-06", 0.02),
               ("2022-10", 0.085), ("2023-09", 0.065), ("2025-03", 0.075), ("2035", 0.05)]
DTA12_SEASON = {1: 1.7, 12: 1.6, 2: 1.3, 3: 1.1, 11: 1.2, 10: 1.0, 4: 0.9, 5: 0.75, 6: 0.7, 7: 0.75, 8: 0.7, 9: 0.85}
RTT_LIST_PER_M = [("2000", 45_000), ("2010", 46_000), ("2015-04", 58_000), ("2019-12", 78_000), ("2020-03", 77_000),
                  ("2020-06", 67_000), ("2021-03", 83_000), ("2022-12", 125_000), ("2023-09", 135_000),
                  ("2024-06", 133_000), ("2025-03", 130_000), ("2035", 120_000)]
RTT_18_PCT = [("2000", 90), ("2010", 92.5), ("2015-04", 92), ("2016-04", 91), ("2018-01", 88), ("2019-12", 83.5),
              ("2020-03", 81), ("2020-07", 46), ("2021-03", 62), ("2021-12", 66), ("2022-12", 58), ("2023-12", 57),
              ("2025-03", 59.8), ("2035", 66)]
RTT_WINTER = {12: -1.2, 1: -1.5, 2: -0.6, 4: 0.3, 5: 0.5, 6: 0.6, 7: 0.4}
RTT_52_PCT = [("2000", 0.05), ("2019-12", 0.03), ("2020-03", 0.06), ("2020-06", 1.5), ("2021-03", 7.5),
              ("2021-12", 5.0), ("2022-06", 4.3), ("2023-09", 5.0), ("2024-03", 4.1), ("2025-03", 2.7), ("2035", 1.5)]
DM01_LIST_PER_M = [("2000", 11_000), ("2015-04", 16_000), ("2019-12", 19_000), ("2020-04", 11_000),
                   ("2021-12", 27_000), ("2025-03", 29_000), ("2035", 30_000)]
DM01_6WK_PCT = [("2000", 1.2), ("2015-04", 1.0), ("2017-06", 1.5), ("2019-12", 3.5), ("2020-02", 3.0),
                ("2020-05", 58), ("2020-09", 37), ("2021-06", 25), ("2022-06", 27), ("2023-06", 26), ("2024-06", 22),
                ("2025-03", 18), ("2035", 8)]
DM01_WINTER = {1: 2.5, 12: 1.5, 2: 1.0, 8: 1.0}
DM01_13_SHARE = [("2000", 0.15), ("2019-12", 0.2), ("2020-06", 0.7), ("2021-06", 0.45), ("2025-03", 0.33),
                 ("2035", 0.25)]
CANCER_FDS_PCT = [("2000", 78), ("2019", 77), ("2020-05", 82), ("2022-12", 70), ("2024-03", 77.5),
                  ("2025-03", 79), ("2035", 82)]
CANCER_31_PCT = [("2000", 97.5), ("2019", 95.5), ("2022-12", 91), ("2025-03", 91.5), ("2035", 93)]
CANCER_62_PCT = [("2000", 86), ("2016", 82), ("2019-12", 76), ("2020-04", 70), ("2021-06", 72), ("2022-12", 58),
                 ("2024-03", 67), ("2025-03", 71), ("2035", 76)]
CANCER_WINTER = {12: -2.5, 1: -2.0, 8: -1.0}
CANCER_FDS_PER_M = [("2000", 3_200), ("2019", 3_800), ("2025-03", 4_800), ("2035", 5_500)]
GA_OCC_PCT = [("2000", 87), ("2015", 90), ("2019-12", 93), ("2020-04", 62), ("2020-09", 82), ("2021-03", 85),
              ("2022-12", 95), ("2025-03", 93), ("2035", 92)]
GA_OCC_SEASON = {1: 2.0, 12: 1.0, 2: 1.5, 3: 1.0, 8: -1.5, 7: -0.5, 6: -0.5}
GA_BEDS_PER_M = [("2000", 1_950), ("2015", 1_820), ("2020", 1_750), ("2025-03", 1_800), ("2035", 1_850)]
NCTR_SHARE = [("2000", 0.06), ("2020-04", 0.08), ("2022-12", 0.15), ("2025-03", 0.13), ("2035", 0.11)]
WORKFORCE_GROWTH = [("2000", 0.80), ("2010", 0.86), ("2015", 0.88), ("2019-12", 1.0), ("2024-06", 1.19),
                    ("2025-03", 1.2), ("2035", 1.3)]
VW_PER_100K = [("2022-04", 8.0), ("2023-03", 20.0), ("2024-03", 23.0), ("2025-03", 24.0), ("2035", 30.0)]

REGIONS = ("North East and Yorkshire", "North West", "Midlands", "East of England", "London", "South East",
           "South West")
REGION_GOR = ("A", "B", "F", "G", "H", "J", "K")
ICBS_PER_REGION_ENGLAND = (4, 3, 11, 6, 5, 6, 7)  # 42, as in the real 2022 ICB map
AMBULANCE_PER_REGION_ENGLAND = (2, 1, 2, 1, 1, 2, 1)  # 10 ambulance trusts

_P1 = ("Alder", "Bram", "Calder", "Dun", "Ever", "Fern", "Glen", "Hart", "Ivy", "Kings", "Lark", "Marsh", "Nor",
       "Oak", "Pen", "Quarry", "Raven", "Stone", "Thorn", "Ash", "Wey", "Wyn", "Elm", "Holly", "Brook", "Cliff",
       "Dale", "Fox", "Heath", "Moor")
_P2 = ("ford", "ley", "bridge", "wick", "field", "ham", "mouth", "borough", "stead", "combe", "worth", "ton")


@dataclass
class Region:
    index: int
    code: str
    ons_code: str
    name: str  # without the SYNTHETIC prefix (see display)
    gor: str

    @property
    def display(self) -> str:
        return f"SYNTHETIC {self.name}"


@dataclass
class Icb:
    index: int
    code: str
    ons_code: str
    place: str
    region: int
    population: float
    imd_score: float
    sub_icbs: list[tuple[str, str]] = field(default_factory=list)  # (code, ONS code)

    @property
    def name(self) -> str:
        return f"SYNTHETIC NHS {self.place} Integrated Care Board"

    @property
    def short(self) -> str:
        return f"SYNTHETIC {self.place}"


@dataclass
class Org:
    """A provider code as it appears in publications: a base unit (with its own latent series) or the new code a
    merger creates (reported as the sum of its members from the merger month)."""
    serial: int
    code: str
    name: str
    kind: str  # acute | specialist | mental_health | community | ambulance | independent
    icb: int
    region: int
    scale: float  # millions of population served (volume driver)
    open_date: date
    close_date: date | None = None
    successor: str | None = None
    merged_from: tuple[str, ...] = ()
    base: bool = True  # False for a code created by a merger (no latent series of its own)
    services: frozenset[str] = frozenset()
    effects: dict[str, float] = field(default_factory=dict)

    @property
    def is_trust(self) -> bool:
        return self.kind != "independent"


@dataclass
class Merger:
    date: date
    old: tuple[str, ...]
    new: str
    kind: str  # 'new_trust' (all old codes close) | 'acquisition' (the acquirer's code continues)


@dataclass
class Universe:
    scale: str
    seed: int
    end: int  # absolute month
    regions: list[Region]
    icbs: list[Icb]
    orgs: list[Org]  # base units first (serial order), then merger codes
    mergers: list[Merger]

    @property
    def base(self) -> list[Org]:
        return [o for o in self.orgs if o.base]

    def by_code(self) -> dict[str, Org]:
        return {o.code: o for o in self.orgs}

    def reporting_codes(self, month: int) -> list[str]:
        """For each base unit (in serial order), the code its figures are published under in this month."""
        codes = [o.code for o in self.base]
        for m in sorted(self.mergers, key=lambda m: m.date):
            if month >= m.date.year * 12 + m.date.month - 1:
                codes = [m.new if c in m.old else c for c in codes]
        return codes

    def current_trusts(self) -> list[Org]:
        return [o for o in self.orgs if o.is_trust and o.close_date is None]


def rng_for(seed: int, stream: int, key: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, stream, key])


def _place_names(rng: np.random.Generator, n: int) -> list[str]:
    pool = [a + b for a in _P1 for b in _P2]
    pick = rng.permutation(len(pool))[:n]
    return [pool[i] for i in pick]


def build_universe(scale: str, seed: int, end: int, mergers: int | None = None) -> Universe:
    """Regions, ICBs, trusts and independent providers for a scale; deterministic for (scale, seed)."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    rng = rng_for(seed, S_UNIVERSE)
    places = _place_names(rng, 360)
    p = iter(places)
    if scale == "england":
        region_ids, icb_counts, amb_counts = list(range(7)), ICBS_PER_REGION_ENGLAND, AMBULANCE_PER_REGION_ENGLAND
    elif scale == "region":
        region_ids, icb_counts, amb_counts = [2], (6,), (1,)
    else:
        region_ids, icb_counts, amb_counts = [2], (1,), (0,)
    regions = [Region(k, f"YZ{r + 1}", f"E40{900001 + r}", REGIONS[r], REGION_GOR[r])
               for k, r in enumerate(region_ids)]
    icbs: list[Icb] = []
    for k, n_icb in enumerate(icb_counts):
        for _ in range(n_icb):
            i = len(icbs) + 1
            pop = float(np.clip(rng.lognormal(np.log(1.25e6), 0.4), 0.5e6, 3.2e6))
            imd = float(np.clip(rng.normal(21.5, 6.0), 9.0, 38.0))
            icb = Icb(i - 1, f"QZ{i:02d}", f"E54{900000 + i}", next(p), k, pop, imd)
            n_sub = int(rng.integers(1, 5))
            icb.sub_icbs = [(f"Z{i:02d}{chr(65 + s)}", f"E38{900000 + i * 10 + s}") for s in range(n_sub)]
            icbs.append(icb)
    # non-ambulance trusts per ICB: 2 each, the rest spread in proportion to population (exact totals)
    n_trusts = {"icb": 6, "region": 30, "england": 204}[scale]
    pops = np.array([i.population for i in icbs])
    per_icb = 2 + rng.multinomial(n_trusts - 2 * len(icbs), pops / pops.sum()) if scale != "icb" else [6]
    orgs: list[Org] = []

    def add(kind: str, icb: Icb, scale_m: float, name: str) -> Org:
        o = Org(len(orgs), "", name, kind, icb.index, icb.region, scale_m,
                date(1990 + int(rng.integers(0, 19)), 4, 1))
        orgs.append(o)
        return o

    # NHS trusts, ICB by ICB
    for icb, n in zip(icbs, per_icb):
        if scale == "icb":
            kinds = ["acute", "acute", "acute", "acute", "mental_health", "community"]
        else:
            n = int(n)
            kinds = ["acute"] + [str(k) for k in rng.choice(["acute", "mental_health", "community", "specialist"],
                                                            size=n - 1, p=[0.52, 0.26, 0.13, 0.09])]
            if "mental_health" not in kinds and n >= 3:
                kinds[-1] = "mental_health"
        acute_w = rng.dirichlet(np.full(kinds.count("acute"), 3.0))
        aw = iter(acute_w)
        n_mh = max(kinds.count("mental_health"), 1)
        n_com = max(kinds.count("community"), 1)
        for kind in kinds:
            place = next(p)
            if kind == "acute":
                s = icb.population / 1e6 * float(next(aw))
                label = rng.choice(["HOSPITALS NHS FOUNDATION TRUST", "HOSPITALS NHS TRUST",
                                    "UNIVERSITY HOSPITALS NHS FOUNDATION TRUST", "HEALTHCARE NHS TRUST"])
            elif kind == "specialist":
                s = float(rng.uniform(0.15, 0.6))
                label = rng.choice(["SPECIALIST HOSPITAL NHS FOUNDATION TRUST", "CHILDREN'S HOSPITAL NHS TRUST",
                                    "EYE HOSPITAL NHS FOUNDATION TRUST", "CANCER CENTRE NHS FOUNDATION TRUST"])
            elif kind == "mental_health":
                s = icb.population / 1e6 / n_mh
                label = rng.choice(["MENTAL HEALTH NHS FOUNDATION TRUST", "PARTNERSHIP NHS FOUNDATION TRUST",
                                    "HEALTH AND CARE NHS TRUST"])
            else:
                s = icb.population / 1e6 / n_com
                label = rng.choice(["COMMUNITY HEALTHCARE NHS TRUST", "COMMUNITY HEALTH SERVICES NHS TRUST"])
            add(kind, icb, s, f"SYNTHETIC {place.upper()} {label}")
    # ambulance trusts: one or two per region, hosted by the region's first ICB
    for k, n_amb in enumerate(amb_counts):
        host = next(i for i in icbs if i.region == k)
        region_pop = sum(i.population for i in icbs if i.region == k) / 1e6
        for j in range(n_amb):
            part = ("EAST ", "WEST ")[j] if n_amb > 1 else ""
            add("ambulance", host, region_pop / n_amb,
                f"SYNTHETIC {part}{REGIONS[region_ids[k]].upper()} AMBULANCE SERVICE NHS TRUST")
    for o in orgs:
        o.code = f"ZS{o.serial + 1:03d}"
    # independent-sector providers (urgent treatment centres and diagnostics), in the supplement, not in ODS
    n_is = {"icb": 1, "region": 4, "england": 24}[scale]
    for j in range(n_is):
        icb = icbs[int(rng.integers(0, len(icbs)))] if j else icbs[0]
        kind_is = "utc" if j % 2 == 0 else "diagnostics"
        place = next(p)
        o = add("independent", icb, float(rng.uniform(0.08, 0.3)),
                f"SYNTHETIC {place.upper()} {'URGENT CARE LTD' if kind_is == 'utc' else 'DIAGNOSTICS LTD'}")
        o.code = f"ZP{j + 1:03d}"
        o.services = frozenset({kind_is})
    _assign_effects(orgs, icbs, seed)
    merger_list = _make_mergers(orgs, icbs, seed, end, DEFAULT_MERGERS[scale] if mergers is None else mergers)
    return Universe(scale, seed, end, regions, icbs, orgs, merger_list)


def _assign_effects(orgs: list[Org], icbs: list[Icb], seed: int) -> None:
    """Persistent provider effects: performance offsets, mix, which services each provider runs."""
    for o in orgs:
        r = rng_for(seed, S_UNIT, o.serial)
        dep = (icbs[o.icb].imd_score - 21.5) / 6.0  # deprivation z-score of the host ICB
        e = {
            "ae_offset": float(r.normal(0, 5.0) - 1.2 * dep),
            "ae_t3_share": float(r.uniform(0.0, 0.9)),
            "admit": float(r.uniform(0.88, 1.15)),
            "dta12_mult": float(r.lognormal(0, 0.55)),
            "rtt_offset": float(r.normal(0, 5.5) - 1.0 * dep),
            "rtt52_mult": float(r.lognormal(0, 0.5)),
            "rtt_size": float(r.lognormal(0, 0.2)),
            "dm01_mult": float(r.lognormal(0, 0.45)),
            "dm01_size": float(r.lognormal(0, 0.2)),
            "cancer_offset": float(r.normal(0, 4.0)),
            "cancer_size": float(r.lognormal(0, 0.2)),
            "occ_offset": float(r.normal(0, 2.5)),
            "beds_size": float(r.lognormal(0, 0.15)),
            "wf_size": float(r.lognormal(0, 0.15)),
            "nctr_mult": float(r.lognormal(0, 0.3)),
            "critical_care": float(r.uniform(0.03, 0.06)),
            "has_picu": float(r.random() < 0.25),
            "has_nicu": float(r.random() < 0.7),
            "teaching": float(r.random() < 0.3),
            "has_t2": float(r.random() < 0.5),
        }
        o.effects = e
        if o.kind == "acute":
            o.services = frozenset({"ae_t1", "rtt", "dm01", "cancer", "beds", "discharge", "kh03", "workforce"}
                                   | ({"ae_t3"} if e["ae_t3_share"] > 0.35 else set()))
        elif o.kind == "specialist":
            o.services = frozenset({"rtt", "dm01", "cancer", "beds", "kh03", "workforce"}
                                   | ({"ae_t2"} if e["has_t2"] else set()))
        elif o.kind == "mental_health":
            o.services = frozenset({"rtt", "kh03", "workforce"})
        elif o.kind == "community":
            o.services = frozenset({"ae_t3", "rtt", "dm01", "kh03", "workforce"})
        elif o.kind == "ambulance":
            o.services = frozenset({"workforce"})
        elif "utc" in o.services:
            o.services = frozenset({"ae_t3"})
        else:
            o.services = frozenset({"dm01"})


def _make_mergers(orgs: list[Org], icbs: list[Icb], seed: int, end: int, n: int) -> list[Merger]:
    """Pairs of acute trusts in one ICB merge on 1 April of MERGER_YEARS[i]; alternately into a new code and as an
    acquisition. Skipped when the date is after the end month."""
    rng = rng_for(seed, S_UNIVERSE, 7)
    out: list[Merger] = []
    used: set[int] = set()
    candidates = [i for i in icbs if sum(1 for o in orgs if o.icb == i.index and o.kind == "acute") >= 2]
    order = rng.permutation(len(candidates))
    for i in range(min(n, len(candidates), len(MERGER_YEARS))):
        d = date(MERGER_YEARS[i], 4, 1)
        if d.year * 12 + d.month - 1 > end:
            continue
        icb = candidates[int(order[i])]
        pair = [o for o in orgs if o.base and o.icb == icb.index and o.kind == "acute"
                and o.serial not in used][:2]
        if len(pair) < 2:
            continue
        used |= {o.serial for o in pair}
        close = d - timedelta(days=1)
        if i % 2 == 0:
            new = Org(len(orgs), f"ZS{len([o for o in orgs if o.is_trust]) + 1:03d}",
                      f"SYNTHETIC {pair[0].name.split()[1]} AND {pair[1].name.split()[1]} "
                      "UNIVERSITY HOSPITALS NHS FOUNDATION TRUST", "acute", icb.index, icb.region,
                      pair[0].scale + pair[1].scale, d, merged_from=(pair[0].code, pair[1].code), base=False,
                      services=pair[0].services | pair[1].services)
            orgs.append(new)
            for o in pair:
                o.close_date, o.successor = close, new.code
            out.append(Merger(d, (pair[0].code, pair[1].code), new.code, "new_trust"))
        else:
            big, small = sorted(pair, key=lambda o: -o.scale)
            small.close_date, small.successor = close, big.code
            big.merged_from = (small.code,)
            out.append(Merger(d, (small.code,), big.code, "acquisition"))
    return out


# ---- latent monthly series per base unit -----------------------------------------------------------------------
@dataclass
class Latent:
    """Arrays of shape (units, months) over EPOCH..end (column j = absolute month EPOCH + j)."""
    months: np.ndarray  # absolute month of each column
    series: dict[str, np.ndarray]

    def col(self, month: int) -> int:
        return month - EPOCH


def _ar1(rng: np.random.Generator, n: int, sd: float, phi: float = 0.6) -> np.ndarray:
    z = rng.standard_normal(n)
    out = np.empty(n)
    acc = 0.0
    scale = sd * np.sqrt(1 - phi * phi)
    for i in range(n):
        acc = phi * acc + scale * z[i]
        out[i] = acc
    return out


def _covid(table: dict[str, float], months: np.ndarray) -> np.ndarray:
    f = np.ones(len(months))
    for k, v in table.items():
        f[months == month_abs(k)] = v
    return f


def build_latent(u: Universe) -> Latent:
    """Expected values (not yet counts) per base unit and month: volumes, rates and percentages."""
    months = np.arange(EPOCH, u.end + 1)
    T = len(months)
    base = u.base
    dim = np.array([days_in(int(a)) for a in months]) / 30.44
    covid_ae, covid_el = _covid(COVID_AE, months), _covid(COVID_ELECTIVE, months)
    nat = {
        "t1_per_m": trajectory(AE_T1_PER_M, months) * seasonal(AE_VOLUME_SEASON, months, 1.0) * dim * covid_ae,
        "t3_per_m": trajectory(AE_T3_PER_M, months) * seasonal(AE_VOLUME_SEASON, months, 1.0) * dim * covid_ae,
        "t1_pct": trajectory(AE_T1_PCT, months) + seasonal(AE_WINTER, months),
        "t3_pct": trajectory(AE_T3_PCT, months) + 0.3 * seasonal(AE_WINTER, months),
        "admit": trajectory(ADMIT_RATE, months),
        "dta12": trajectory(DTA12_SHARE, months) * seasonal(DTA12_SEASON, months, 1.0),
        "rtt_list": trajectory(RTT_LIST_PER_M, months),
        "rtt18": trajectory(RTT_18_PCT, months) + seasonal(RTT_WINTER, months),
        "rtt52": trajectory(RTT_52_PCT, months),
        "dm01_list": trajectory(DM01_LIST_PER_M, months),
        "dm01_6": trajectory(DM01_6WK_PCT, months) + seasonal(DM01_WINTER, months),
        "dm01_13": trajectory(DM01_13_SHARE, months),
        "fds": trajectory(CANCER_FDS_PCT, months) + seasonal(CANCER_WINTER, months),
        "c31": trajectory(CANCER_31_PCT, months) + 0.3 * seasonal(CANCER_WINTER, months),
        "c62": trajectory(CANCER_62_PCT, months) + seasonal(CANCER_WINTER, months),
        "fds_vol": trajectory(CANCER_FDS_PER_M, months) * covid_el * dim,
        "occ": trajectory(GA_OCC_PCT, months) + seasonal(GA_OCC_SEASON, months),
        "beds": trajectory(GA_BEDS_PER_M, months),
        "nctr": trajectory(NCTR_SHARE, months),
        "wf": trajectory(WORKFORCE_GROWTH, months),
        "covid_el": covid_el,
    }
    names = ("t1", "t3", "t2", "t1_pct", "t3_pct", "admit", "dta12", "rtt_list", "rtt18", "rtt52", "dm01_list",
             "dm01_6", "dm01_13", "fds", "c31", "c62", "cancer_vol", "beds", "occ", "nctr", "wf")
    S = {k: np.zeros((len(base), T)) for k in names}
    for i, o in enumerate(base):
        e, s = o.effects, o.scale
        r = lambda k: rng_for(u.seed, 100 + k, o.serial)  # noqa: E731  one stream per series and unit
        vol_noise = lambda k, sd=0.03: np.exp(_ar1(r(k), T, sd, 0.3))  # noqa: E731
        if "ae_t1" in o.services:
            S["t1"][i] = nat["t1_per_m"] * s * vol_noise(1)
        if "ae_t3" in o.services:
            share = {"acute": e["ae_t3_share"], "community": 0.5}.get(o.kind, 1.0)
            S["t3"][i] = nat["t3_per_m"] * s * share * vol_noise(2)
        if "ae_t2" in o.services:
            S["t2"][i] = 2500 * s * seasonal(AE_VOLUME_SEASON, months, 1.0) * dim * covid_ae * vol_noise(3)
        S["t1_pct"][i] = np.clip(nat["t1_pct"] + e["ae_offset"] + _ar1(r(4), T, 2.0), 30, 99.5)
        S["t3_pct"][i] = np.clip(nat["t3_pct"] + 0.25 * e["ae_offset"] + _ar1(r(5), T, 0.8), 80, 100)
        S["admit"][i] = np.clip(nat["admit"] * e["admit"] * vol_noise(6, 0.02), 0.1, 0.5)
        S["dta12"][i] = np.clip(nat["dta12"] * e["dta12_mult"] * vol_noise(7, 0.15), 0, 0.4)
        rtt_scale = {"acute": 1.0, "specialist": 1.6, "mental_health": 0.02, "community": 0.06}.get(o.kind, 0)
        if "rtt" in o.services:
            S["rtt_list"][i] = nat["rtt_list"] * s * rtt_scale * e["rtt_size"] * vol_noise(8, 0.015)
        S["rtt18"][i] = np.clip(nat["rtt18"] + e["rtt_offset"] + _ar1(r(9), T, 1.2, 0.8), 25, 99.5)
        S["rtt52"][i] = np.clip(nat["rtt52"] * e["rtt52_mult"] * vol_noise(10, 0.08), 0, 25)
        dm_scale = {"acute": 1.0, "specialist": 0.5, "community": 0.15, "independent": 1.0}.get(o.kind, 0)
        if "dm01" in o.services:
            S["dm01_list"][i] = nat["dm01_list"] * s * dm_scale * e["dm01_size"] * vol_noise(11, 0.04)
        S["dm01_6"][i] = np.clip(nat["dm01_6"] * e["dm01_mult"] + _ar1(r(12), T, 1.5), 0.2, 85)
        S["dm01_13"][i] = np.clip(nat["dm01_13"] * np.sqrt(e["dm01_mult"]), 0.02, 0.95)
        S["fds"][i] = np.clip(nat["fds"] + e["cancer_offset"] + _ar1(r(13), T, 2.0), 40, 99.5)
        S["c31"][i] = np.clip(nat["c31"] + 0.5 * e["cancer_offset"] + _ar1(r(14), T, 1.5), 60, 100)
        S["c62"][i] = np.clip(nat["c62"] + e["cancer_offset"] + _ar1(r(15), T, 3.0), 25, 99.5)
        c_scale = {"acute": 1.0, "specialist": 1.4}.get(o.kind, 0)
        if "cancer" in o.services:
            S["cancer_vol"][i] = nat["fds_vol"] * s * c_scale * e["cancer_size"] * vol_noise(16, 0.05)
        b_scale = {"acute": 1.0, "specialist": 0.7}.get(o.kind, 0)
        if "beds" in o.services:
            S["beds"][i] = nat["beds"] * s * b_scale * e["beds_size"] * vol_noise(17, 0.01)
        S["occ"][i] = np.clip(nat["occ"] + e["occ_offset"] + _ar1(r(18), T, 1.2), 40, 99.0)
        S["nctr"][i] = np.clip(nat["nctr"] * e["nctr_mult"] * vol_noise(19, 0.06), 0.01, 0.35)
        wf_per_m = {"acute": 13_000, "specialist": 9_000, "mental_health": 3_600, "community": 2_600,
                    "ambulance": 1_100}.get(o.kind, 0)
        if "workforce" in o.services:
            S["wf"][i] = nat["wf"] * s * wf_per_m * e["wf_size"] * vol_noise(20, 0.004)
    S["covid_el"] = np.broadcast_to(nat["covid_el"], (len(base), T)).copy()
    return Latent(months, S)
