"""Step-1 metric catalogue: what each metric means, where it comes from and how it rolls up. Plain data.

Why a catalogue: an IBP's "where are we now" is only as trustworthy as its definitions. Every number in
`s1_current_state.metric_values` has one entry here, in plain English with its formula, so a planner can read
what a figure is, which publication it came from (and in which order sources are preferred), and whether an
ICB, regional or England figure is a sum of numerators and denominators or not aggregated at all.

Fields
- sources: raw source names in order of precedence; where two hold the same (org, period) the first wins.
- comparison_sources: sources that measure something close but NOT the same; never used as values, only
  compared in `source_conflicts` so the difference stays visible.
- formula: how value follows from numerator and denominator: 'count' (value = numerator),
  'percent' (value = 100 x numerator / denominator), 'ratio' (value = numerator / denominator).
- aggregation: 'sum' (ICB, region and England sum provider numerators and denominators, then apply the
  formula; percentages are never averaged); 'sum_of_values' (the aggregate value is the sum of provider values,
  used for a monthly average of people, where the sum of trust averages is the number of people);
  'none' (not rolled up).
- level: the organisation level the source publishes ('provider' or 'icb'); ICB-level metrics roll up to region
  and England only. A metric that is not rolled up takes England from the source's own England row, if any.
"""
from __future__ import annotations

from dataclasses import dataclass

import duckdb

SCHEMA = "s1_current_state"
DOMAINS = ("quality_of_care", "population_health", "cost_and_efficiency")


@dataclass(frozen=True)
class Metric:
    metric_id: str
    name: str
    definition: str
    unit: str
    triple_aim_domain: str
    higher_is_better: bool | None
    grain: str
    sources: tuple[str, ...]
    aggregation: str = "sum"
    formula: str = "count"
    level: str = "provider"
    comparison_sources: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        """Raw source names, preferred first, as one string for the catalogue table."""
        return ", ".join(self.sources)


AE_SOURCES = ("ae_monthly_official", "ae_trust_monthly", "ae_attendances_2016_2019")
# The combined workbook's provider rows, then the CWT-CRS extract as published, then the tidy older extract; a
# combined workbook's ALL CANCERS / ALL ROUTES (ALL STAGES) rows equal the extract's sums (LAYOUTS.md 4a, 4b).
CANCER_SOURCES = ("cancer_combined_workbook", "cancer_cwt_crs_extract", "cancer_waiting_times")

_CORE: tuple[Metric, ...] = (
    # ---- urgent and emergency care ------------------------------------------------------------------------
    Metric("ae_attendances", "A&E attendances",
           "All A&E attendances in the month: the sum of the six 'A&E attendances' columns of the monthly A&E "
           "file (Type 1, Type 2, Other A&E department, and the three Booked Appointments columns). Fallbacks: "
           "healthyr total_attendances (same definition: it includes booked appointments), then NHS-R 2016-19 "
           "attendances summed over types 1, 2 and other.",
           "count", "population_health", None, "month", AE_SOURCES),
    Metric("ae_4hr_pct", "A&E four-hour performance",
           "Percentage of A&E attendances admitted, transferred or discharged within 4 hours: "
           "100 x (1 - sum of the six 'Attendances over 4hrs' columns / ae_attendances); numerator = attendances "
           "within 4 hours, denominator = attendances; only where attendances > 0 and the over-4-hour count is "
           "reported (field-testing trusts report none).",
           "percent", "quality_of_care", True, "month", AE_SOURCES, formula="percent"),
    Metric("ae_12hr_dta_waits", "12-hour waits from decision to admit",
           "Patients who waited 12 or more hours from decision to admit to admission "
           "('Patients who have waited 12+ hrs from DTA to admission').",
           "count", "quality_of_care", False, "month", ("ae_monthly_official",)),
    Metric("ae_emergency_admissions", "Emergency admissions",
           "Emergency admissions via A&E (Type 1, Type 2, Other A&E department) plus other emergency admissions. "
           "Fallback: healthyr total_emergency_admissions (same definition). The NHS-R 2016-19 file holds only "
           "admissions via A&E, so it is not used.",
           "count", "population_health", None, "month", ("ae_monthly_official", "ae_trust_monthly")),
    # ---- elective: RTT, diagnostics, cancer ---------------------------------------------------------------
    Metric("rtt_waiting_list", "RTT waiting list (incomplete pathways)",
           "Patients waiting to start consultant-led treatment at month end: total_incomplete on the trust-total "
           "row (treatment function C_999). From the RTT full CSV data file: 'Total All' of the Part_2 (incomplete "
           "pathways) C_999 rows, summed over commissioners, independent-sector providers included (unknown clock "
           "start dates included, as NHS England's total does). Fallback: the older incomplete-provider file, which "
           "holds NHS trusts only.",
           "count", "quality_of_care", False, "month", ("rtt_full_extract", "rtt_incomplete")),
    Metric("rtt_18wk_pct", "RTT patients waiting under 18 weeks",
           "100 x total_within_18wks / total_incomplete on the C_999 row, only where total_incomplete > 0 "
           "(constitutional standard 92%). From the full CSV data file: the Part_2 C_999 week bands up to 18 weeks "
           "('Gt 00 To 01' .. 'Gt 17 To 18') over 'Total All', summed over commissioners.",
           "percent", "quality_of_care", True, "month", ("rtt_full_extract", "rtt_incomplete"), formula="percent"),
    Metric("rtt_52wk_waiters", "RTT patients waiting over 52 weeks",
           "Incomplete pathways waiting more than 52 weeks: total_52plus_wks on the C_999 row (an empty cell "
           "counts as 0 where total_incomplete is present). healthyr's 'waits over 52 weeks' is compared but never "
           "used: it sums the week bands over every RTT part of the full extract (completed admitted and "
           "non-admitted pathways and incomplete pathways with a decision to admit as well as incomplete "
           "pathways), so it runs about 1.9 times higher (median over the 1,708 trust-months both files "
           "hold, Apr 2024-Feb 2025); see rtt_52wk_all_rtt_parts.",
           "count", "quality_of_care", False, "month", ("rtt_full_extract", "rtt_incomplete"),
           comparison_sources=("rtt_long_waits",)),
    Metric("rtt_52wk_all_rtt_parts", "RTT 52+ week waits, all RTT parts (healthyr definition)",
           "healthyr's waits_over_52_weeks on treatment 'Total': week bands over 52 weeks summed over every RTT "
           "part of the NHS England full extract (completed and incomplete pathways, incomplete pathways with a "
           "decision to admit counted again). Not the published 52-week waiting-list figure; kept only for its "
           "long, internally consistent 2019-2025 series.",
           "count", "quality_of_care", False, "month", ("rtt_long_waits",)),
    *(Metric(f"rtt_{weeks}wk_waiters", f"RTT patients waiting over {weeks} weeks",
             f"Incomplete pathways waiting more than {weeks} weeks at month end: the Part_2 C_999 week bands from "
             f"'Gt {weeks} To {weeks + 1}' up ('Gt 104 Weeks' for 104), summed over commissioners, of the RTT full "
             "CSV data file" + (f"; fallback total_{weeks}plus_wks of the incomplete-provider file (NHS trusts only)."
                                if weeks in (65, 78) else "."),
             "count", "quality_of_care", False, "month",
             ("rtt_full_extract", "rtt_incomplete") if weeks in (65, 78) else ("rtt_full_extract",))
      for weeks in (65, 78, 104)),
    Metric("rtt_clock_starts", "RTT new clock starts",
           "New RTT periods (pathways starting) in the month: 'Total All' of the Part_3 C_999 rows of the RTT full "
           "CSV data file, summed over commissioners.",
           "count", "population_health", None, "month", ("rtt_full_extract",)),
    Metric("rtt_clock_stops_admitted", "RTT clock stops: admitted",
           "Completed pathways of admitted patients in the month: 'Total All' of the Part_1A C_999 rows of the RTT "
           "full CSV data file, summed over commissioners.",
           "count", "cost_and_efficiency", None, "month", ("rtt_full_extract",)),
    Metric("rtt_clock_stops_non_admitted", "RTT clock stops: non-admitted",
           "Completed pathways of non-admitted patients in the month: 'Total All' of the Part_1B C_999 rows of the "
           "RTT full CSV data file, summed over commissioners.",
           "count", "cost_and_efficiency", None, "month", ("rtt_full_extract",)),
    Metric("dm01_waiting_list", "Diagnostic waiting list (DM01)",
           "Patients waiting for one of the 15 key diagnostic tests at month end: total_waiting on the "
           "diagnostic_test 'Total' row. Includes independent-sector providers.",
           "count", "quality_of_care", False, "month", ("dm01_web_file", "dm01_diagnostics")),
    Metric("dm01_6wk_pct", "Diagnostic patients waiting 6+ weeks",
           "100 x waiting_6plus_wks / total_waiting on the 'Total' row, only where total_waiting > 0 "
           "(standard: no more than 1%, recovery target 5%).",
           "percent", "quality_of_care", False, "month", ("dm01_web_file", "dm01_diagnostics"), formula="percent"),
    Metric("cancer_fds_pct", "Cancer 28-day Faster Diagnosis Standard",
           "100 x within_standard / total_treated, both summed over every '28-day FDS' row of the provider-month "
           "(all routes and cancer types); only where the total > 0. Target 77-80%.",
           "percent", "quality_of_care", True, "month", CANCER_SOURCES, formula="percent"),
    Metric("cancer_31d_pct", "Cancer 31-day combined standard",
           "100 x within_standard / total_treated, summed over the '31-day Combined' rows with treatment_modality "
           "'ALL MODALITIES'; only where the total > 0. Target 96%.",
           "percent", "quality_of_care", True, "month", CANCER_SOURCES, formula="percent"),
    Metric("cancer_62d_pct", "Cancer 62-day combined standard",
           "100 x within_standard / total_treated, summed over the '62-day Combined' rows with treatment_modality "
           "'ALL MODALITIES'; only where the total > 0. Target 85% (interim 75%).",
           "percent", "quality_of_care", True, "month", CANCER_SOURCES, formula="percent"),
    # The same standards by commissioner: a metric of its own, because an ICB's cancer_*_pct sums the providers
    # based in the ICB (where patients are treated) while these count the ICB's own patients (registered or living
    # there), wherever treated; so a surviving Q-code (QE1) has both, each under its own metric_id.
    *(Metric(f"cancer_{m}_pct_icb_patients", f"{name}, the ICB's own patients (wherever treated)",
             f"100 x Within / Total of the {rows} row of the System Level Performance sheet of the cancer combined "
             "workbook (commissioner basis): patients the ICB is responsible for (registered with its GP practices, "
             "or living in its area when unregistered), wherever they were treated; only where the total > 0. Not "
             f"the figure of the providers based in the ICB (that is cancer_{m}_pct). "
             "Published for the 42 ICBs of July 2022 to March 2026 under their own codes, not restated to the ICBs "
             "of April 2026 (QE1 lives on; merged ones such as QH8 stay history). England is NHS England's own total "
             "row: the ICBs, NHS England's commissioning hubs and patients with no known commissioner ('UNKNOWN'), "
             f"equal to England's cancer_{m}_pct from the same workbook. Not rolled up: no region rows (hubs and "
             f"UNKNOWN belong to none). {target}",
             "percent", "quality_of_care", True, "month", ("cancer_combined_workbook_system",), aggregation="none",
             formula="percent", level="icb")
      for m, name, rows, target in (
          ("fds", "Cancer 28-day Faster Diagnosis Standard", "FDS, ALL CANCERS, ALL ROUTES", "Target 77-80%."),
          ("31d", "Cancer 31-day combined standard", "31D, ALL CANCERS, ALL STAGES, ALL MODALITIES", "Target 96%."),
          ("62d", "Cancer 62-day combined standard", "62D, ALL CANCERS, ALL ROUTES, ALL MODALITIES",
           "Target 85% (interim 75%)."))),
    # ---- beds and flow ------------------------------------------------------------------------------------
    Metric("ga_beds_available", "General and acute beds available (monthly)",
           "Monthly average of daily general and acute beds available (adult + paediatric), UEC daily sitrep: "
           "general_acute_beds_available. Acute trusts only.",
           "beds", "cost_and_efficiency", None, "month", ("beds_ga_critical_care",)),
    Metric("ga_bed_occupancy_pct", "General and acute bed occupancy (monthly)",
           "100 x general_acute_beds_occupied / general_acute_beds_available (monthly averages of daily counts), "
           "only where available > 0. Planning assumption: 92% or lower (lower is better: it is the headroom "
           "that lets patients flow from A&E to a ward).",
           "percent", "cost_and_efficiency", False, "month", ("beds_ga_critical_care",), formula="percent"),
    Metric("kh03_ga_beds_available", "General and acute beds open overnight (KH03, quarterly)",
           "Average daily number of general and acute beds open overnight over the quarter: available_general_acute "
           "of the KH03 'NHS Trust by Sector' sheet.",
           "beds", "cost_and_efficiency", None, "quarter", ("kh03_web_file", "beds_kh03")),
    Metric("kh03_ga_bed_occupancy_pct", "General and acute overnight bed occupancy (KH03, quarterly)",
           "100 x occupied_general_acute / available_general_acute over the quarter, only where available > 0 "
           "(lower is better, as for the monthly occupancy).",
           "percent", "cost_and_efficiency", False, "quarter", ("kh03_web_file", "beds_kh03"), formula="percent"),
    Metric("discharge_nctr_avg", "Patients not meeting the criteria to reside (daily average)",
           "Monthly average of the daily count of patients who no longer meet the criteria to reside but were not "
           "discharged: numerator = sum of do_not_meet_criteria_to_reside over the days reported, denominator = "
           "days reported, value = numerator / denominator (people on an average day). ICB, region and England "
           "values are the SUM of trust monthly averages (people on an average day across the trusts); their "
           "numerator is the summed patient-days and their denominator is left empty, because dividing summed "
           "patient-days by summed trust-days would give the average per trust, not the number of people.",
           "patients", "cost_and_efficiency", False, "month", ("discharge_daily",), aggregation="sum_of_values",
           formula="ratio"),
    # ---- virtual wards (published by ICB) -----------------------------------------------------------------
    Metric("vw_capacity", "Virtual ward capacity",
           "Virtual ward beds (capacity) reported by the ICB at the month's snapshot: vw_capacity. Published "
           "by ICB, so there are no provider rows; region and England are sums of ICBs.",
           "beds", "population_health", True, "month", ("virtual_wards",), level="icb"),
    Metric("vw_capacity_per_100k", "Virtual ward capacity per 100,000 GP-registered population",
           "numerator = vw_capacity x 100,000, denominator = gp_registered_population (fixed within a financial "
           "year by the publication), value = numerator / denominator. Region and England sum numerators and "
           "denominators of their ICBs.",
           "beds per 100,000 population", "population_health", True, "month", ("virtual_wards",), formula="ratio",
           level="icb"),
    Metric("vw_occupancy_pct", "Virtual ward occupancy",
           "100 x vw_patients / vw_capacity, only where capacity > 0 (recomputed from the counts; the published "
           "fraction is blank above 100%). Ambition: 80%.",
           "percent", "cost_and_efficiency", None, "month", ("virtual_wards",), formula="percent", level="icb"),
    # ---- workforce ----------------------------------------------------------------------------------------
    Metric("workforce_fte", "Workforce FTE (all HCHS staff)",
           "Full-time-equivalent HCHS staff employed by the organisation at the month-end snapshot: staff_group "
           "'Total', measure FTE of the staff-group file; fallback (long series from 2009) the total FTE "
           "timeseries, whose zero cells mean 'organisation did not exist' and are dropped. Trust and provider "
           "employers only: ICBs and other core organisations (NHS England, CSUs, PCTs) are left out, so England "
           "here is the provider workforce, not the published NHS total.",
           "fte", "cost_and_efficiency", None, "month", ("workforce_staff_group", "workforce_total")),
)

# Workforce staff groups of NHS Workforce Statistics -> metric id suffix. The file mixes totals and their parts
# ('HCHS Doctors' = Consultant + Specialty Registrar + ...): each group is its own metric, never summed together.
# Two groups were renamed during the period (checked: the parts still add up to their parent in every month), so
# both spellings map to one metric.
WORKFORCE_STAFF_GROUPS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    # (staff_group spellings as published, metric suffix, the group it is part of)
    (("Professionally qualified clinical staff",), "professionally_qualified_clinical", "Total"),
    (("HCHS Doctors",), "hchs_doctors", "Professionally qualified clinical staff"),
    (("Consultant",), "consultant", "HCHS Doctors"),
    (("Associate Specialist",), "associate_specialist", "HCHS Doctors"),
    (("Specialty Doctor",), "specialty_doctor", "HCHS Doctors"),
    (("Staff Grade",), "staff_grade", "HCHS Doctors"),
    (("Specialty Registrar",), "specialty_registrar", "HCHS Doctors"),
    (("Core Training",), "core_training", "HCHS Doctors"),
    (("Foundation Doctor Year 2",), "foundation_doctor_year_2", "HCHS Doctors"),
    (("Foundation Doctor Year 1",), "foundation_doctor_year_1", "HCHS Doctors"),
    (("Hospital Practitioner / Clinical Assistant",), "hospital_practitioner_clinical_assistant", "HCHS Doctors"),
    (("Other HCHS Doctor Grades", "Other and Local HCHS Doctor Grades"), "other_hchs_doctor_grades", "HCHS Doctors"),
    (("Nurses & health visitors",), "nurses_health_visitors", "Professionally qualified clinical staff"),
    (("Midwives",), "midwives", "Professionally qualified clinical staff"),
    (("Ambulance staff",), "ambulance_staff", "Professionally qualified clinical staff"),
    (("Scientific, therapeutic & technical staff",), "scientific_therapeutic_technical",
     "Professionally qualified clinical staff"),
    (("Support to clinical staff",), "support_to_clinical_staff", "Total"),
    (("Support to doctors, nurses & midwives",), "support_to_doctors_nurses_midwives", "Support to clinical staff"),
    (("Support to ambulance staff",), "support_to_ambulance_staff", "Support to clinical staff"),
    (("Support to ST&T staff",), "support_to_stt_staff", "Support to clinical staff"),
    (("NHS infrastructure support",), "nhs_infrastructure_support", "Total"),
    (("Central functions",), "central_functions", "NHS infrastructure support"),
    (("Hotel, property & estates",), "hotel_property_estates", "NHS infrastructure support"),
    (("Senior managers",), "senior_managers", "NHS infrastructure support"),
    (("Managers",), "managers", "NHS infrastructure support"),
    (("Other staff or those with unknown classification", "Unknown classification"), "other_or_unknown", "Total"),
)


def _workforce_group_metric(groups: tuple[str, ...], suffix: str, parent: str) -> Metric:
    also = f" (published as '{groups[1]}' in some months)" if len(groups) > 1 else ""
    return Metric(
        f"workforce_fte_{suffix}", f"Workforce FTE: {groups[0]}",
        f"Full-time-equivalent staff in the staff group '{groups[0]}'{also}, part of '{parent}', measure FTE, at "
        "the month-end snapshot of the staff-group file. One staff group per metric: groups and their parts are "
        "never added together. Trust and provider employers only.",
        "fte", "cost_and_efficiency", None, "month", ("workforce_staff_group",))


METRICS: tuple[Metric, ...] = _CORE + tuple(_workforce_group_metric(*g) for g in WORKFORCE_STAFF_GROUPS)
BY_ID: dict[str, Metric] = {m.metric_id: m for m in METRICS}


def _validate() -> None:
    """Fail at import on a catalogue typo rather than on a silently empty metric."""
    assert len(BY_ID) == len(METRICS), "duplicate metric_id"
    for m in METRICS:
        assert m.triple_aim_domain in DOMAINS, m.metric_id
        assert m.grain in ("month", "quarter"), m.metric_id
        assert m.aggregation in ("sum", "sum_of_values", "none"), m.metric_id
        assert m.formula in ("count", "percent", "ratio"), m.metric_id
        assert m.level in ("provider", "icb"), m.metric_id
        assert (m.unit == "percent") == (m.formula == "percent"), m.metric_id


_validate()


def coverage(m: Metric) -> str:
    """Which providers an ICB, region or England figure of this metric covers, source by source: a month's
    totals are built from one source only (the first in precedence that has that month), so the text says which."""
    from .sources import BY_NAME

    parts = []
    for s in m.sources:
        spec = BY_NAME.get(s)
        if spec is not None:
            parts.append(f"{spec.title}: {spec.coverage or 'the organisations in the file'}")
    return "Totals for a month come from the first of these that has the month. " + " | ".join(parts)


def build_metric_catalogue(con: duckdb.DuckDBPyConnection) -> int:
    """Write s1_current_state.metric_catalogue (one row per metric) and return its row count."""
    con.execute(f"create schema if not exists {SCHEMA}")
    con.execute(f"""
        create or replace table {SCHEMA}.metric_catalogue (
            metric_id varchar primary key, name varchar, definition varchar, unit varchar,
            triple_aim_domain varchar, higher_is_better boolean, grain varchar, source varchar,
            aggregation varchar, formula varchar, level varchar, comparison_sources varchar, coverage varchar)""")
    rows = []
    for m in METRICS:
        rows.append((m.metric_id, m.name, m.definition, m.unit, m.triple_aim_domain, m.higher_is_better, m.grain,
                     m.source, m.aggregation, m.formula, m.level, ", ".join(m.comparison_sources) or None,
                     coverage(m)))
    con.executemany(f"insert into {SCHEMA}.metric_catalogue values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)
