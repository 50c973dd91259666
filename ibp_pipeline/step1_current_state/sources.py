"""The registry of NHS publications the pipeline loads: one SourceSpec per published file layout.

Why a registry: every loader, data-quality suite and provenance record is driven by these specs, so adding a
publication (or a new month of one) is a data change, not a code change. A spec names the columns as published,
what kind each is, the key that must be unique, which column holds the ODS organisation code and how the
period is read. Column headers are matched ignoring case and spacing; anything not listed is kept in the
archived original but not loaded.
"""
from __future__ import annotations

from .source_spec import (DM01_BANDS, KINDS, LAYOUTS, RTT_BANDS, C, Column, SourceSpec, counts, norm_header,  # noqa: F401
                          snake)
from .sources_published import PUBLISHED_REFERENCE, PUBLISHED_SOURCES

AE_MEASURES = (
    "A&E attendances Type 1", "A&E attendances Type 2", "A&E attendances Other A&E Department",
    "A&E attendances Booked Appointments Type 1", "A&E attendances Booked Appointments Type 2",
    "A&E attendances Booked Appointments Other Department",
    "Attendances over 4hrs Type 1", "Attendances over 4hrs Type 2", "Attendances over 4hrs Other Department",
    "Attendances over 4hrs Booked Appointments Type 1", "Attendances over 4hrs Booked Appointments Type 2",
    "Attendances over 4hrs Booked Appointments Other Department",
    "Patients who have waited 4-12 hs from DTA to admission",
    "Patients who have waited 12+ hrs from DTA to admission",
    "Emergency admissions via A&E - Type 1", "Emergency admissions via A&E - Type 2",
    "Emergency admissions via A&E - Other A&E department", "Other emergency admissions",
)
ORG = "org_reference"

SOURCES: tuple[SourceSpec, ...] = (
    # ---- organisation reference (ODS, ONS) --------------------------------------------------------------
    SourceSpec(
        "ods_trusts_2025", "ODS NHS trusts (etr) with ICB and region, 2025", ORG, ("trusts_ods_etr_2025.csv",),
        (C("org_code", "code"), C("org_name"), C("nhs_region_code", "code"), C("icb_code", "code"),
         C("postcode"), C("open_date", "date"), C("close_date", "date"), C("icb_ons_code", "code"),
         C("icb_name"), C("nhs_region_name")),
        key=("org_code",), reference=True, publisher="NHS England ODS"),
    SourceSpec(
        "ods_trusts_2020", "ODS NHS trusts (etr) with STP and region, 2020", ORG, ("trusts_ods_etr_2020.csv",),
        (C("org_code", "code"), C("org_name"), C("nhs_region_code", "code"), C("stp_code", "code"),
         C("postcode"), C("open_date", "date"), C("close_date", "date")),
        key=("org_code",), reference=True, publisher="NHS England ODS"),
    SourceSpec(
        "ods_trusts_2026", "ODS NHS trusts (etr) with 2026 ICBs", ORG, ("trusts_ods_etr_2026.csv",),
        (C("org_code", "code"), C("org_name"), C("nhs_region_code", "code"), C("icb_code_2026", "code"),
         C("open_date", "date"), C("close_date", "date"), C("icb_name_2026"), C("nhs_region_name")),
        key=("org_code",), reference=True, publisher="NHS England ODS"),
    SourceSpec(
        "ods_successors", "ODS successor organisations (mergers and renames)", ORG, ("lookup_org_successors.csv",),
        (C("old_code", "code"), C("new_code", "code"), C("date", "date")),
        key=("old_code", "new_code", "date"), reference=True, publisher="NHS Digital ODS via geographr"),
    SourceSpec(
        "trust_mergers", "NHS trust mergers 2020-2021", ORG, ("lookup_trust_mergers_2020_2021.csv",),
        (C("trust_code_old", "code"), C("trust_code_new", "code"), C("from_date", "date")),
        key=("trust_code_old",), reference=True, publisher="epiforecasts (LSHTM) from NHS England"),
    SourceSpec(
        "subicb_icb_region", "Sub-ICB locations to ICBs to NHS England regions (July 2022)", ORG,
        ("lookup_subicb_icb_region_2022.csv",),
        (C("sub_icb_ons_code", "code"), C("sub_icb_code", "code"), C("sub_icb_name"), C("icb_ons_code", "code"),
         C("icb_code", "code"), C("icb_name"), C("nhs_region_ons_code", "code"), C("nhs_region_code", "code"),
         C("nhs_region_name")),
        key=("sub_icb_code",), reference=True, publisher="ONS Open Geography Portal"),
    SourceSpec(
        "trust_region_2021", "NHS trusts (2022) to NHS England regions (2021)", ORG, ("lookup_trust22_nhs_region21.csv",),
        (C("nhs_trust22_code", "code"), C("nhs_trust22_name"), C("nhs_region21_nhs_code", "code"),
         C("nhs_region21_name"), C("status")),
        key=("nhs_trust22_code",), reference=True, publisher="NHS Digital ODS via geographr"),
    SourceSpec(
        "trust_icb_catchment", "Acute trust catchment shares by ICB (OHID, 2022)", ORG,
        ("lookup_trust22_icb22_catchment_proportions.csv",),
        (C("nhs_trust22_code", "code"), C("icb22_code", "code"), C("proportion_trust_came_from_icb", "fraction")),
        key=("nhs_trust22_code", "icb22_code"), reference=True, publisher="OHID via geographr"),
    SourceSpec(
        "organisations_supplement", "Organisations seen in bundled publications but absent from the ODS extracts",
        "@reference", ("organisations_supplement.csv",),
        (C("org_code", "code"), C("org_name"), C("org_type"), C("nhs_region_code", "code"), C("icb_code", "code"),
         C("seen_in"), C("note")),
        key=("org_code",), reference=True, publisher="ibp_pipeline (derived from the bundled publications)"),
    # ---- A&E ------------------------------------------------------------------------------------------------
    SourceSpec(
        "ae_monthly_official", "A&E attendances and emergency admissions, monthly provider file (official)",
        "ae_monthly_provider_official", ("Monthly-AE-*.csv", "*-20[0-9][0-9]-CSV*.csv"),
        (C("Period", "ae_period", "period"), C("Org Code", "code", "org_code"), C("Parent Org", name="parent_org"),
         C("Org name", name="org_name")) + counts(*AE_MEASURES),
        key=("period_start", "org_code"), org_column="org_code", period_column="period",
        ratio_pairs=(("attendances_over_4hrs_type_1", "ae_attendances_type_1"),),
        total_code="TOTAL", publisher="NHS England (A&E Attendances and Emergency Admissions, MSitAE)",
        org_name_column="org_name",
        coverage="every provider NHS England publishes: NHS trusts, independent sector, UTCs and walk-in centres"),
    SourceSpec(
        "ae_trust_monthly", "A&E attendances by NHS trust, monthly 2021-2024 (healthyr)",
        "ae_trust_monthly_2021_2024", ("ae_trust_monthly.csv",),
        (C("nhs_trust22_code", "code", "org_code"), C("date", "date"))
        + counts("total_attendances", "attendances_over_4hours", "total_emergency_admissions",
                 "emergency_admissions_over_4hours"),
        key=("org_code", "period_start"), org_column="org_code", period_column="date",
        ratio_pairs=(("attendances_over_4hours", "total_attendances"),),
        publisher="NHS England A&E statistics, compiled by humaniverse healthyr",
        coverage="NHS trusts only: no independent-sector providers, or UTCs and walk-in centres run outside trusts"),
    SourceSpec(
        "ae_icb_monthly", "A&E attendances by ICB, monthly 2022-2024 (healthyr)",
        "ae_trust_monthly_2021_2024", ("ae_icb_monthly.csv",),
        (C("icb22_code", "code"), C("date", "date"))
        + counts("total_attendances", "attendances_over_4hours", "total_emergency_admissions",
                 "emergency_admissions_over_4hours"),
        key=("icb22_code", "period_start"), org_column="icb22_code", period_column="date",
        publisher="NHS England A&E statistics, aggregated to ICB by humaniverse healthyr"),
    SourceSpec(
        "ae_attendances_2016_2019", "A&E attendances by provider and type, 2016-2019 (NHSRdatasets)",
        "ae_attendances_nhsr_2016_2019", ("ae_attendances.csv",),
        (C("period", "date"), C("org_code", "code"), C("type")) + counts("attendances", "breaches", "admissions"),
        key=("period_start", "org_code", "type"), org_column="org_code", period_column="period",
        ratio_pairs=(("breaches", "attendances"),), publisher="NHS England, tidied by NHS-R Community",
        closed=True),
    # ---- elective: RTT, diagnostics, cancer ------------------------------------------------------------------
    SourceSpec(
        "rtt_incomplete", "RTT incomplete pathways by provider and treatment function (official)",
        "rtt_incomplete_provider_specialty_monthly", ("rtt_incomplete_provider_tf.csv", "Incomplete-Provider-*.csv"),
        (C("period_month", "date"), C("region_code", "code"), C("provider_code", "code"), C("provider_name"),
         C("treatment_function_code", "code"), C("treatment_function"))
        + counts(*RTT_BANDS, "total_incomplete", "total_within_18wks")
        + (C("median_wait_wks", "number"), C("p92_wait_wks", "number"))
        + counts("total_52plus_wks", "total_78plus_wks", "total_65plus_wks"),
        key=("period_start", "provider_code", "treatment_function_code"), org_column="provider_code",
        period_column="period_month",
        ratio_pairs=(("total_within_18wks", "total_incomplete"), ("total_52plus_wks", "total_incomplete")),
        publisher="NHS England (Consultant-led RTT Waiting Times)",
        coverage="NHS trusts only: the bundled file holds no independent-sector providers, so its England total "
                 "is below NHS England's (7.04 against 7.42 million in 2024/25)"),
    SourceSpec(
        "rtt_long_waits", "RTT waits over 18 and 52 weeks by provider and treatment, 2019-2025 (healthyr)",
        "rtt_trust_long_waits_2019_2025", ("rtt_trust_waits_over_18_52.csv",),
        (C("nhs_trust22_code", "code", "org_code"), C("nhs_trust22_name", name="org_name"), C("date", "date"),
         C("treatment")) + counts("waits_over_18_weeks", "waits_over_52_weeks"),
        key=("org_code", "period_start", "treatment"), org_column="org_code", period_column="date",
        ratio_pairs=(("waits_over_52_weeks", "waits_over_18_weeks"),),
        publisher="NHS England RTT statistics, compiled by humaniverse healthyr"),
    SourceSpec(
        "rtt_icb_flows", "RTT completed, incomplete and new pathways by ICB footprint, 2020-2025 (healthyr)",
        "rtt_trust_long_waits_2019_2025", ("rtt_icb_flows.csv",),
        (C("stp20_nhs_code", "code", "icb_code"), C("date", "date")) + counts("completed", "incomplete", "new"),
        key=("icb_code", "period_start"), org_column="icb_code", period_column="date",
        publisher="NHS England RTT statistics, compiled by humaniverse healthyr"),
    SourceSpec(
        "rtt_icb_long_waits", "RTT waits over 18 and 52 weeks by ICB footprint and treatment (healthyr)",
        "rtt_trust_long_waits_2019_2025", ("rtt_icb_tf_waits_over_18_52.csv",),
        (C("stp20_nhs_code", "code", "icb_code"), C("stp20_name"), C("date", "date"), C("treatment"))
        + counts("waits_over_18_weeks", "waits_over_52_weeks"),
        key=("icb_code", "period_start", "treatment"), org_column="icb_code", period_column="date",
        publisher="NHS England RTT statistics, compiled by humaniverse healthyr"),
    SourceSpec(
        "dm01_diagnostics", "Diagnostic waiting times and activity (DM01) by provider and test (official)",
        "diagnostics_dm01_provider_monthly", ("dm01_provider_test_monthly.csv", "Monthly-Diagnostics-Web-File-Provider-*.csv"),
        (C("period_month", "date"), C("region_code", "code"), C("region_name"), C("provider_code", "code"),
         C("provider_name"), C("diagnostic_id", "code"), C("diagnostic_test"))
        + counts("total_waiting", "waiting_6plus_wks", "waiting_13plus_wks", *DM01_BANDS,
                 "activity_planned", "activity_unscheduled", "activity_waiting_list")
        + (C("source_file", name="published_file"),),
        key=("period_start", "provider_code", "diagnostic_id"), org_column="provider_code", period_column="period_month",
        ratio_pairs=(("waiting_6plus_wks", "total_waiting"), ("waiting_13plus_wks", "waiting_6plus_wks")),
        publisher="NHS England (DM01, collected via SDCS)"),
    SourceSpec(
        "cancer_waiting_times", "Cancer waiting times by provider, standard, route, modality and cancer type",
        "cancer_waiting_times_provider_monthly", ("cwt_provider_monthly.csv",),
        (C("period_month", "date"), C("standard"), C("provider_code", "code"), C("stage_route"),
         C("treatment_modality"), C("cancer_type")) + counts("total_treated", "within_standard", "breaches"),
        key=("period_start", "standard", "provider_code", "stage_route", "treatment_modality", "cancer_type"),
        org_column="provider_code", period_column="period_month",
        ratio_pairs=(("within_standard", "total_treated"), ("breaches", "total_treated")),
        publisher="NHS England (Cancer Waiting Times, CWT-CRS provider extract)"),
    # ---- workforce, beds, discharge, virtual wards ---------------------------------------------------------
    SourceSpec(
        "workforce_staff_group", "NHS Workforce Statistics: FTE and headcount by organisation and staff group",
        "workforce_staff_group_org_monthly", ("workforce_org_staff_group_monthly.csv",),
        (C("period_month", "date"), C("measure"), C("region_code", "code"), C("region_name"), C("ics_code", "code"),
         C("ics_name"), C("org_name"), C("org_code", "code"), C("staff_group"), C("value", "count")),
        key=("period_start", "measure", "org_code", "staff_group"), org_column="org_code", period_column="period_month",
        publisher="NHS England, NHS Workforce Statistics"),
    SourceSpec(
        "workforce_total", "NHS Workforce Statistics: total FTE and headcount by organisation, 2009-2025",
        "workforce_total_org_timeseries_2009_2025", ("workforce_org_total_timeseries.csv",),
        (C("snapshot_date", "date"), C("measure"), C("region_code", "code"), C("ics_code", "code"),
         C("org_code", "code"), C("org_name"), C("value", "count")),
        key=("period_start", "measure", "org_code"), org_column="org_code", period_column="snapshot_date",
        publisher="NHS England, NHS Workforce Statistics"),
    SourceSpec(
        "beds_ga_critical_care", "G&A and critical care beds by acute trust, monthly averages (UEC sitrep)",
        "beds_ga_critical_care_monthly_2022_2024", ("ga_critical_care_beds_trust_monthly.csv",),
        (C("nhs_trust22_code", "code", "org_code"), C("date", "date"))
        + counts("general_acute_beds_available", "general_acute_beds_occupied", "adult_general_acute_beds_available",
                 "adult_general_acute_beds_occupied", "paediatric_general_acute_beds_available",
                 "paediatric_general_acute_beds_occupied", "adult_critical_care_beds_available",
                 "adult_critical_care_beds_occupied", "paediatric_intensive_cared_beds_available",
                 "paediatric_intensive_cared_beds_occupied", "neonatal_intensive_care_bed_available",
                 "neonatal_intensive_care_bed_occupied"),
        key=("org_code", "period_start"), org_column="org_code", period_column="date",
        ratio_pairs=(("general_acute_beds_occupied", "general_acute_beds_available"),),
        publisher="NHS England UEC daily sitrep, compiled by humaniverse healthyr"),
    SourceSpec(
        "beds_kh03", "Beds open overnight by sector, quarterly (KH03)", "beds_kh03_overnight_quarterly",
        ("kh03_overnight_beds_by_sector.csv",),
        (C("quarter_end", "date"), C("year"), C("region_code", "code"), C("org_code", "code"), C("org_name"))
        + counts("available_total", "available_general_acute", "available_learning_disabilities",
                 "available_maternity", "available_mental_illness", "occupied_total", "occupied_general_acute",
                 "occupied_learning_disabilities", "occupied_maternity", "occupied_mental_illness")
        + (C("source_file", name="published_file"),),
        key=("org_code", "period_start"), org_column="org_code", period_column="quarter_end", period_grain="quarter",
        publisher="NHS England (KH03, collected via SDCS)"),
    SourceSpec(
        "beds_kh03_specialty", "Occupied overnight beds by specialty, quarterly (KH03)", "beds_kh03_overnight_quarterly",
        ("kh03_occupied_beds_by_specialty.csv",),
        (C("quarter_end", "date"), C("region_code", "code"), C("org_code", "code"), C("org_name"), C("specialty"),
         C("occupied_beds", "count")),
        key=("org_code", "period_start", "specialty"), org_column="org_code", period_column="quarter_end",
        period_grain="quarter", publisher="NHS England (KH03, collected via SDCS)"),
    SourceSpec(
        "discharge_daily", "Acute discharge sitrep: discharges and patients not meeting criteria to reside, daily",
        "discharge_sitrep_trust_daily", ("discharge_trust_daily.csv",),
        (C("nhs_trust22_code", "code", "org_code"), C("date", "date", "day"))
        + counts("discharged_by_1700", "discharged_between_1701_2359", "discharged_total",
                 "do_not_meet_criteria_to_reside"),
        key=("org_code", "day"), org_column="org_code", period_column="day",
        publisher="NHS England Acute Discharge Situation Report, compiled by humaniverse healthyr"),
    SourceSpec(
        "discharge_delay_reasons", "Discharge delays by reason, monthly", "discharge_sitrep_trust_daily",
        ("delayed_discharge_reasons_trust_monthly.csv",),
        (C("nhs_trust22_name", name="org_name"), C("nhs_trust22_code", "code", "org_code"), C("date", "date"),
         C("delay_reason"), C("delay_count", "count")),
        key=("org_code", "period_start", "delay_reason"), org_column="org_code", period_column="date",
        publisher="NHS England Acute Discharge Situation Report, compiled by humaniverse healthyr"),
    SourceSpec(
        "virtual_wards", "Virtual ward capacity and occupancy by ICB, monthly", "virtual_wards_icb_monthly",
        ("virtual_wards_icb_monthly.csv",),
        (C("period_month", "date"), C("region_name"), C("region_code", "code"), C("icb_code", "code"), C("icb_name"),
         C("vw_capacity", "count"), C("vw_capacity_per_100k_gp_pop", "count"), C("gp_registered_population", "count"),
         C("vw_patients", "count"), C("vw_occupancy", "fraction")),
        key=("period_start", "icb_code"), org_column="icb_code", period_column="period_month",
        publisher="NHS England (Virtual Ward Capacity and Occupancy)"),
    # ---- population, deprivation, health index -----------------------------------------------------------
    SourceSpec(
        "population_icb_2020", "ONS mid-2020 population by ICB (2022 boundaries)", "population_ons",
        ("ons_mid2020_icb22_single_age.csv",),
        (C("icb22_code", "code"), C("icb22_code_h", "code", "icb_code"), C("icb22_name"), C("total_population", "count")),
        key=("icb_code",), org_column="icb_code", publisher="Office for National Statistics via demographr"),
    SourceSpec(
        "population_uk_2023", "ONS mid-2023 population by UK country, sex and single year of age", "population_ons",
        ("ons_mid2023_uk_countries_single_age_sex.csv",),
        (C("sex"), C("Code", "code", "area_code"), C("Name", name="area_name"), C("Geography", name="geography"),
         C("age"), C("count", "count")),
        key=("area_code", "sex", "age"), publisher="Office for National Statistics via NHSRdatasets"),
    SourceSpec(
        "imd_icb", "English Indices of Deprivation 2025 by ICB", "deprivation_imd", ("imd2025_england_icb24.csv",),
        (C("icb24_code", "code"), C("icb24_name"), C("imd_average_rank", "number"), C("imd_average_score", "number"),
         C("imd_rank_of_average_score", "number"),
         C("imd_proportion_of_lso_as_in_most_deprived_10_percent_nationally", "fraction", "imd_share_lsoas_most_deprived_10pct"),
         C("health_deprivation_and_disability_average_score", "number")),
        key=("icb24_code",), org_column="icb24_code", publisher="MHCLG English Indices of Deprivation, via IMD package"),
    SourceSpec(
        "imd_ltla", "English Indices of Deprivation 2025 by local authority", "deprivation_imd",
        ("imd2025_england_ltla24.csv",),
        (C("ltla24_code", "code"), C("ltla24_name"), C("imd_average_rank", "number"), C("imd_average_score", "number"),
         C("imd_rank_of_average_score", "number")),
        key=("ltla24_code",), publisher="MHCLG English Indices of Deprivation, via IMD package"),
    SourceSpec(
        "health_index_icb", "ONS Health Index for England by ICB footprint, 2015-2021", "population_health_index_icb",
        ("england_health_index_ics.csv",),
        (C("icb22_code", "code"), C("icb22_name"), C("year", "count"), C("overall_score", "number"),
         C("healthy_people_domain", "number"), C("healthy_lives_domain", "number"),
         C("healthy_places_domain", "number")),
        key=("icb22_code", "year"), org_column="icb22_code", publisher="Office for National Statistics via healthyr"),
    SourceSpec(
        "health_index_indicators", "ONS Health Index indicators by ICB footprint, 2015-2021",
        "population_health_index_icb", ("england_health_index_ics_indicators.csv",),
        (C("icb22_code", "code"), C("icb22_name"), C("year", "count"), C("indicator"), C("value", "number")),
        key=("icb22_code", "year", "indicator"), org_column="icb22_code",
        publisher="Office for National Statistics via healthyr"),
    # ---- staff survey, peers, money, estates ---------------------------------------------------------------
    SourceSpec(
        "staff_survey_2024", "NHS Staff Survey 2024: theme and People Promise scores by organisation",
        "staff_survey_nss_2024_org", ("nss2024_org_theme_scores.csv",),
        (C("survey_year", "count"), C("sheet"), C("org_code", "code"), C("org_name"), C("benchmarking_group"),
         C("region"), C("ics"), C("weighting"), C("measure"), C("score", "number"), C("base_responses", "count")),
        key=("org_code", "sheet", "measure"), org_column="org_code", publisher="NHS England, NHS Staff Survey"),
    SourceSpec(
        "trust_peer_finder", "NHS Trust Peer Finder characteristics (c. 2017/18)", "trust_peer_finder_characteristics_2018",
        ("nhs_trust_peer_finder_appendix_a.csv",),
        (C("Procode", "code", "org_code"), C("Deprivation", "number"), C("Patients", "count"),
         C("Attendances", "count"), C("FTE staff", "count"), C("Diagnosis", "number"), C("Night beds", "number"),
         C("Day beds", "number"), C("Age 0-15", "number", "age_0_15"), C("Age 60-74", "number", "age_60_74"),
         C("No procedure", "number"), C("Operating Expenses", "number"), C("Urban", "number"), C("Sites", "count"),
         C("Sea distance", "number"), C("MFF payment index", "number"), C("Degree of specialisation", "number"),
         C("StudentStaff", "number", "student_staff"), C("CCGs", "count"),
         C("Non-type 1 AE department", "count", "non_type_1_ae_department"), C("Absence Rate", "fraction"),
         C("DTOCs", "count")),
        key=("org_code",), org_column="org_code", publisher="NHS Digital Trust Peer Finder, via The Health Foundation"),
    SourceSpec(
        "national_cost_collection", "National Cost Collection 2024/25: national schedule of unit costs",
        "finance_national_cost_collection_2024_25", ("ncc_national_schedule_2024_25.csv",),
        (C("department_code"), C("currency_code"), C("currency_desc"), C("activity", "count"),
         C("unit_cost", "number"), C("cost", "number")),
        key=("department_code", "currency_code"), publisher="NHS England, National Cost Collection"),
    SourceSpec(
        "estates_eric_site", "Estates Returns Information Collection 2019/20, by site", "estates_eric_2019_20_site",
        ("eric_2019_20_site_data.csv",),
        (C("Trust Code", "code", "org_code"), C("Trust Name", name="org_name"), C("Trust Type", name="trust_type"),
         C("Site Code", "code", "site_code"), C("Site Name", name="site_name"), C("Site Type", name="site_type"),
         C("Gross internal floor area (m)", "count", "gross_internal_floor_area_m2"),
         C("Single bedrooms for patients with en-suite facilities (No.)", "count", "single_bedrooms_ensuite"),
         C("Cost to eradicate high risk backlog", "count", "backlog_high_risk_gbp"),
         C("Cost to eradicate significant risk backlog", "count", "backlog_significant_risk_gbp"),
         C("Cost to eradicate moderate risk backlog", "count", "backlog_moderate_risk_gbp"),
         C("Cost to eradicate low risk backlog", "count", "backlog_low_risk_gbp")),
        key=("site_code",), org_column="org_code", publisher="NHS Digital, ERIC 2019/20"),
    # ---- local: the organisation's own ledger -----------------------------------------------------------------
    # Not published: a trust's monthly finance ledger, summarised to the plan's finance lines, so the plan can be
    # tracked against what was spent and earned. The layout (docs/plan.md): org_code, month (YYYY-MM or the first
    # day of the month), line (a plan finance line code such as pay_nurses_health_visitors), amount_gbp, note. The
    # bundled file is an EXAMPLE for one trust, made up, and says so on every row.
    SourceSpec(
        "finance_ledger", "Finance ledger extract (local): organisation, month, plan line, amount",
        "finance_ledger_example", ("*ledger*.csv",),
        (C("org_code", "code"), C("month", "date"), C("line"), C("amount_gbp", "number"),
         C("note", required=False)),
        key=("org_code", "period_start", "line"), org_column="org_code", period_column="month",
        publisher="the organisation's own finance ledger (local data, not published)", closed=True,
        notes="a local extract with no publication schedule: no freshness expectation"),
) + PUBLISHED_REFERENCE + PUBLISHED_SOURCES

BY_NAME: dict[str, SourceSpec] = {s.name: s for s in SOURCES}
REFERENCE_SOURCES = tuple(s for s in SOURCES if s.reference)
DATA_SOURCES = tuple(s for s in SOURCES if not s.reference)
