"""The plan itself: a three-year operational plan (activity and performance, workforce, finance) for one trust or
ICB, drafted from the pipeline's forecasts, trajectories and costs, edited by a planner in a workbook, loaded back
as a new version, and checked for agreement between its parts (triangulation).

Modules: period (the planning period's months), assumptions (the planning assumptions document), lines (every line
a plan holds), prefill (a draft from the served tables), workbook (the Excel file a planner edits and what is read
back), store (every version, kept in data/plans.duckdb, which no refresh rebuilds), triangulation (the checks),
assets (the plan tables of the warehouse, served in schema `plan`).
"""
