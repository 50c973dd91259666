"""Synthetic England-scale NHS data for ibp_pipeline: `ibp synth --scale {icb,region,england} --years N --out DIR`.

Clearly labelled synthetic (README.txt and SOURCE.txt in every folder, 'SYNTHETIC' organisation names, codes that
cannot be real ODS codes) and never written into the project's data/ folder. The files use the layouts of the
real publications the registry (step1_current_state/sources.py) reads, so the real loaders, validation and
pipeline run on them unchanged:

    IBP_DATA_DIR=DIR/run IBP_SOURCES_DIR=DIR/sources IBP_REFERENCE_DIR=DIR/reference ibp run

model.py builds the health system (organisations, mergers, monthly latent series with trends, seasonality and
COVID-19); publications.py writes each published layout; generator.py injects bad rows and writes the files,
README.txt and synthetic_manifest.json.
"""
from .generator import DEFAULT_SEED, MANIFEST, SynthConfig, SynthError, SynthResult, check_out_dir, generate

__all__ = ["DEFAULT_SEED", "MANIFEST", "SynthConfig", "SynthError", "SynthResult", "check_out_dir", "generate"]
