"""The Monte Carlo simulation that steps 5 and 6 share: step 5 runs it on the baseline scenario (s5_impact.risk, the
risk of missing each standard), step 6 on every scenario against the baseline (s6_scenarios.*).

- engine.py     the engine itself: pure numpy, the maths in its module doc (SeriesInputs, Setting, Summary,
                run_settings, the chunks of a run: split_simulation, merge_summaries, run_chunked)
- forecasts.py  the step-5 forecasts as the engine reads them, ratio measures derived from two forecasts, and a
                stand-in for benchmarks and tests
- targets.py    targets extended over the forecast months, re-ranked as step 2 ranks them; standards' rules
- inputs.py     everything assembled into the engine's arrays (prepare -> Prepared), the learned occupancy ->
                4-hour relation, the target arrays a setting is scored against, and how each metric is simulated
- scenarios.py  scenario documents: validated YAML (the baseline and the shipped scenarios are in
                documents/scenarios/), one-line errors
- settings.py   a document -> the engine's Setting: driver intervals per month, initiatives resolved against the
                step-5 catalogue (and their cost)
- fanout.py     the Dagster steps and run defaults the step-5/6 fan-outs share (simulate_chunk, default_draws)

Layering (ibp_pipeline_tests/test_architecture.py checks it from the imports): this package imports lib/ and steps
1-4 only, never steps 5, 6 or 7; steps 5 and 6 import it; nothing here imports in a cycle.
"""
