"""Benchmarks that compare this pipeline with the tools in common use; `python -m benchmarks.run_all` runs them all."""
