"""The HTML report of a run: what each stage kept and dropped, score histograms and samples.

`write_report(run_dir, out_path)` is the entry point; `rundir` reads a run directory and
`signals` maps score columns to their config thresholds.
"""

from pipeline.report.html import write_report

__all__ = ["write_report"]
