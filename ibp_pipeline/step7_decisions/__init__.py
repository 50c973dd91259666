"""IBP step 7, enabling decisions: what the dashboards and board packs read and compute.

The Streamlit pages under dashboards/ stay thin: queries, figures and access rules live here as plain functions
over the served database (data/serving.duckdb), so they are tested directly and reused by the board pack."""
