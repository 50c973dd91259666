"""The dashboards' layer (IBP step 7, enabling decisions): what the dashboards and board packs read and compute.

The Streamlit app (dashboards/app.py and dashboards/app_pages/, beside the package) stays thin: queries, figures
and access rules live here as plain functions over the served database (data/serving.duckdb, or its PostgreSQL
copy), so they are tested directly and reused by the board pack; ui.py is the pages' Streamlit helpers. The
pages import this package like any other (`from ibp_pipeline.dashboards import ui`), with no path tricks. It
reads only served tables; it uses the lower steps' registries and rules (sources, catalogue, freshness) and no
step imports it (ibp_pipeline_tests/test_architecture.py: the layer above step 6)."""
