"""Publications read exactly as NHS England publishes them in 2025-2026: the layouts an analyst downloads.

Why a second registry beside sources.py: the tidy CSVs there were prepared once from older publications; these
specs read today's files as they come (the RTT full extract inside its ZIP, workbooks with title rows above the
header, legacy .xls, ODS files with no header row), so a new month needs no preparation and no code change.
A file is recognised by its content (recognise.py): the header row, the sheet, the column count; its name is a
hint only. Each layout's quirks are documented where the spec is, as found in the files.
"""
from __future__ import annotations

from .source_spec import RTT_BANDS, C, SourceSpec

ORG = "org_reference"
NHSE = "NHS England"

# ---- ODS data files (etr: NHS trusts; eccg: commissioners): 27 quoted columns, no header row ------------------
# Column layout as documented by NHS England ODS for its "etr" and "eccg" files; unnamed positions are nulls.
ODS_POSITIONS = (
    "org_code", "org_name", "national_grouping", "high_level_health_geography", "address_line_1",
    "address_line_2", "address_line_3", "address_line_4", "address_line_5", "postcode", "open_date", "close_date",
    "null_13", "org_sub_type_code", "null_15", "null_16", "null_17", "contact_telephone_number", "null_19",
    "null_20", "null_21", "amended_record_indicator", "null_23", "gor_code", "null_25", "null_26", "null_27")


def _ods(name: str, title: str, pattern: str, name_pattern: str) -> SourceSpec:
    """An ODS data file is a snapshot that states no date of its own: no extract date, no 'last change date' (the
    ODS API has one; these CSVs do not), and the amended record indicator (position 22) is a flag ('1' on every
    row), not a date. So the newest open or close date in the file dates the snapshot (the etr file of December
    2025: 2024-12-31; of July 2026: 2026-06-30, a closure that day), and the newest snapshot is current whatever
    order the files arrive in. Two snapshots with the same newest date are told apart by load order only."""
    return SourceSpec(
        name, title, "ods_published", (pattern,),
        (C("org_code", "code"), C("org_name"), C("national_grouping", "code"),
         C("high_level_health_geography", "code"), C("postcode"), C("open_date", "date"),
         C("close_date", "date"), C("org_sub_type_code")),
        key=("org_code",), reference=True, publisher="NHS England ODS", layout="headerless",
        positions=ODS_POSITIONS, name_pattern=name_pattern, snapshot_dates=("open_date", "close_date"))


ODS_ETR = _ods("ods_etr", "ODS NHS trusts (etr data file, as published)", "etr*.csv",
               r"(?i)\b(trust|nhs foundation|care trust)\b")
ODS_ECCG = _ods("ods_eccg", "ODS commissioners: CCGs, ICBs and sub-ICB locations (eccg data file, as published)",
                "eccg*.csv", r"(?i)\b(ccg|icb|integrated care board|sub-icb|commissioning)\b")

# ---- RTT full CSV data file (inside a ZIP): provider x commissioner x treatment function x RTT part --------------
# 121 columns; Part_2/2A fill the weekly bands and 'Total All', Part_1A/1B every column, Part_3 'Total All' only:
# a blank cell is an empty count (0), never text in a number.
RTT_FULL_BAND_HEADERS = tuple(f"Gt {i:02d} To {i + 1:02d} Weeks SUM 1" for i in range(104)) + ("Gt 104 Weeks SUM 1",)
RTT_FULL_EXTRACT = SourceSpec(
    "rtt_full_extract", "RTT full CSV data file: every pathway count by provider, commissioner, treatment and part",
    "rtt_full_extract", ("*RTT*full-extract*.zip", "*RTT*full-extract*.csv", "*RTT*Full*.zip"),
    (C("Period", "ae_period", "period"), C("Provider Parent Org Code", "code", "provider_parent_org_code"),
     C("Provider Parent Name", name="provider_parent_name"), C("Provider Org Code", "code", "provider_org_code"),
     C("Provider Org Name", name="provider_org_name"),
     C("Commissioner Parent Org Code", "code", "commissioner_parent_org_code"),
     C("Commissioner Parent Name", name="commissioner_parent_name"),
     C("Commissioner Org Code", "code", "commissioner_org_code"),
     C("Commissioner Org Name", name="commissioner_org_name"), C("RTT Part Type", name="rtt_part_type"),
     C("RTT Part Description", name="rtt_part_description"),
     C("Treatment Function Code", "code", "treatment_function_code"),
     C("Treatment Function Name", name="treatment_function_name"))
    + tuple(C(h, "count", n) for h, n in zip(RTT_FULL_BAND_HEADERS, RTT_BANDS))
    + (C("Total", "count", "total"), C("Patients with unknown clock start date", "count", "unknown_clock_start"),
       C("Total All", "count", "total_all")),
    key=("period_start", "provider_org_code", "commissioner_org_code", "rtt_part_type", "treatment_function_code"),
    org_column="provider_org_code", period_column="period", org_name_column="provider_org_name",
    publisher=f"{NHSE} (Consultant-led Referral to Treatment Waiting Times, full CSV data file)",
    coverage="every provider NHS England publishes, NHS and independent sector, summed over commissioners")

# ---- DM01 provider web file (.xls): sheet 'Provider', header on row 14 below title rows; England 'Total' row ----
DM01_BAND_HEADERS = tuple(f"{i:02d} <{i + 1:02d} weeks" if i else "0 <01 weeks" for i in range(13)) + ("13+ weeks",)
DM01_WEB_FILE = SourceSpec(
    "dm01_web_file", "Diagnostic waiting times and activity (DM01), provider web file as published",
    "diagnostics_dm01_web_file", ("Monthly-Diagnostics-Web-File-Provider-*",),
    (C("Period", "month_text", "period"), C("Regional Team Code", "code", "region_code"),
     C("Regional Team Name", name="region_name"), C("Provider Code", "code", "provider_code"),
     C("Provider Name", name="provider_name"), C("Total Waiting List", "count", "total_waiting"),
     C("Number waiting 6+ Weeks", "count", "waiting_6plus_wks"),
     C("Number waiting 13+ Weeks", "count", "waiting_13plus_wks"),
     C("Percentage waiting 6+ weeks", "fraction", "fraction_waiting_6plus_wks"))
    + tuple(C(h, "count", f"wk_{i:02d}_to_{i + 1:02d}" if i < 13 else "wk_13_plus")
            for i, h in enumerate(DM01_BAND_HEADERS))
    + (C("Planned tests / procedures", "count", "activity_planned"),
       C("Unscheduled tests / procedures", "count", "activity_unscheduled"),
       C("Waiting list tests / procedures (excluding planned)", "count", "activity_waiting_list")),
    key=("period_start", "provider_code"), org_column="provider_code", period_column="period",
    ratio_pairs=(("waiting_6plus_wks", "total_waiting"), ("waiting_13plus_wks", "waiting_6plus_wks")),
    layout="sheet", sheets=("Provider",), period_label="Period:", total_row=("Provider Name", "Total"),
    total_code="TOTAL", org_name_column="provider_name",
    publisher=f"{NHSE} (Monthly Diagnostic Waiting Times and Activity, DM01 provider web file)",
    coverage="every provider that submitted DM01, NHS and independent sector")

# ---- KH03 beds open overnight (.xlsx): sheet 'NHS Trust by Sector', header on row 15, England row first --------
_KH03_SECTORS = ("Total", "General & Acute", "Learning Disabilities", "Maternity", "Mental Illness")
_KH03_NAMES = ("total", "general_acute", "learning_disabilities", "maternity", "mental_illness")
KH03_WEB_FILE = SourceSpec(
    "kh03_web_file", "Beds open overnight by sector (KH03), quarterly web file as published",
    "beds_kh03_web_file", ("Beds-Open-Overnight-Web_File-*",),
    (C("Period", "month_text", "period"), C("Year", name="year"), C("Period End", name="period_end"),
     C("Region Code", "code", "region_code"), C("Org Code", "code", "org_code"), C("Org Name", name="org_name"))
    + tuple(C(f"Available {h}", "count", f"available_{n}") for h, n in zip(_KH03_SECTORS, _KH03_NAMES))
    + tuple(C(f"Occupied {h}", "count", f"occupied_{n}") for h, n in zip(_KH03_SECTORS, _KH03_NAMES))
    + tuple(C(f"% Occupied {h}", "fraction", f"fraction_occupied_{n}") for h, n in zip(_KH03_SECTORS, _KH03_NAMES)),
    key=("org_code", "period_start"), org_column="org_code", period_column="period", period_grain="quarter",
    layout="sheet", sheets=("NHS Trust by Sector",), period_label="Period:", total_row=("Org Name", "England"),
    total_code="TOTAL", org_name_column="org_name",
    publisher=f"{NHSE} (Bed Availability and Occupancy, KH03 quarterly web file)",
    coverage="every NHS trust that submitted KH03 (average daily beds over the quarter)")

# ---- Cancer waiting times: monthly combined workbook, 'Provider Level Performance' (header row 15) -------------
CANCER_COMBINED = SourceSpec(
    "cancer_combined_workbook", "Cancer waiting times, monthly combined workbook (provider level), as published",
    "cancer_combined_workbook", ("*Monthly-Combined-Workbook*",),
    (C("Period", "month_text", "period"), C("Org Code", "code", "org_code"), C("Region", name="region_name"),
     C("Org Name", name="org_name"), C("Standard", name="standard"), C("Cancer Type", name="cancer_type"),
     C("Referral Route/Stage", name="route_stage"), C("Treatment Modality", name="treatment_modality"),
     C("Total", "count", "total"), C("Within", "count", "within"), C("After", "count", "after"),
     C("Performance", "fraction", "performance")),
    key=("period_start", "org_code", "standard", "cancer_type", "route_stage", "treatment_modality"),
    org_column="org_code", period_column="period", ratio_pairs=(("within", "total"),),
    layout="sheet", sheets=("Provider Level Performance",), period_label="Period:", total_code="TOTAL",
    org_name_column="org_name",
    publisher=f"{NHSE} (Cancer Waiting Times, monthly combined workbook)",
    coverage="every provider NHS England publishes, NHS and independent sector (62-day counts shared 0.5/0.5)")

# ---- the same workbook, 'System Level Performance' (header row 15): the same figures by commissioner -----------
# A second source read from the same file: both specs keep the bundled folder and name patterns, and the landing
# folder's recognition by content (recognise.identify) finds each spec's table on its own sheet, so the one file
# loads into both raw tables. Rows: 'Total' (England, NHS England's own), the 42 ICBs of July 2022 - March 2026
# under their Q-codes (as published, never restated to the ICBs of April 2026), NHS England's commissioning hubs
# (13Q, and the regional health-and-justice hubs: known ODS commissioners, not ICBs) and 'UNKNOWN' (no
# commissioner could be assigned): England = ICBs + hubs + UNKNOWN, checked on every load (check_total_row).
# Whole numbers: no 0.5/0.5 sharing here. 'System' names the commissioner but is no org_name_column: a code the
# reference does not know is quarantined, never a provisional organisation ('UNKNOWN' would otherwise become one).
CANCER_COMBINED_SYSTEM = SourceSpec(
    "cancer_combined_workbook_system",
    "Cancer waiting times, monthly combined workbook (system level: by commissioner), as published",
    "cancer_combined_workbook", ("*Monthly-Combined-Workbook*",),
    (C("Period", "month_text", "period"), C("Org Code", "code", "org_code"), C("System", name="system_name"),
     C("Standard", name="standard"), C("Cancer Type", name="cancer_type"),
     C("Referral Route/Stage", name="route_stage"), C("Treatment Modality", name="treatment_modality"),
     C("Total", "count", "total"), C("Within", "count", "within"), C("After", "count", "after"),
     C("Performance", "fraction", "performance")),
    key=("period_start", "org_code", "standard", "cancer_type", "route_stage", "treatment_modality"),
    org_column="org_code", period_column="period", ratio_pairs=(("within", "total"),),
    layout="sheet", sheets=("System Level Performance",), period_label="Period:", total_code="TOTAL",
    unassigned_code="UNKNOWN",
    publisher=f"{NHSE} (Cancer Waiting Times, monthly combined workbook)",
    coverage="every patient in the workbook, under the commissioner responsible for them: the 42 ICBs of July 2022 "
             "to March 2026, NHS England's commissioning hubs and 'UNKNOWN' (no commissioner known); England is the "
             "same total as the provider sheet's")

# ---- Cancer waiting times: CWT-CRS provider data extract workbook (header row 1; no England or total rows) -------
CANCER_CWT_CRS = SourceSpec(
    "cancer_cwt_crs_extract", "Cancer waiting times, CWT-CRS provider data extract workbook, as published",
    "cancer_cwt_crs_extract", ("CWT-CRS-*Data-Extract-Provider*",),
    (C("PERIOD", "date", "period_month"), C("YEAR", name="year"), C("MONTH", name="month"),
     C("STANDARD", name="standard"), C("ORG CODE", "code", "provider_code"), C("STAGE/ROUTE", name="stage_route"),
     C("TREATMENT MODALITY", name="treatment_modality"), C("CANCER TYPE", name="cancer_type"),
     C("TOTAL TREATED", "number", "total_treated"), C("WITHIN STANDARD", "number", "within_standard"),
     C("BREACHES", "number", "breaches")),
    key=("period_start", "standard", "provider_code", "stage_route", "treatment_modality", "cancer_type"),
    org_column="provider_code", period_column="period_month",
    ratio_pairs=(("within_standard", "total_treated"), ("breaches", "total_treated")),
    layout="sheet", sheets=("CWT CRS Provider Extract",),
    publisher=f"{NHSE} (Cancer Waiting Times, CWT-CRS provider data extract)",
    coverage="every provider in the extract (it names no organisation, so codes the reference does not know are "
             "quarantined)")

PUBLISHED_REFERENCE = (ODS_ETR, ODS_ECCG)
PUBLISHED_SOURCES = (RTT_FULL_EXTRACT, DM01_WEB_FILE, KH03_WEB_FILE, CANCER_COMBINED, CANCER_COMBINED_SYSTEM,
                     CANCER_CWT_CRS)
