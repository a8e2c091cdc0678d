"""Shared helpers for the benchmarks: machine facts, CPU timing, peer venvs, result files.

This module imports only the standard library, because the peer-tool workers import it
from their own virtual environments, where this project's dependencies are not installed.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
RESULTS_DIR = REPO / "bench-results"
BENCH_VENVS = REPO / ".bench-venvs"
DATATROVE_VENV = BENCH_VENVS / "datatrove"
MAKE_BENCH_WARC = REPO.parent / "shared" / "tools" / "make_bench_warc.py"


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, or platform's guess elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_versions(names: list[str]) -> dict[str, str]:
    """Return the installed version of each distribution in this interpreter; missing ones are left out."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def machine_facts() -> dict:
    """Return the facts a reader needs to compare figures across machines."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "load_average_1m": round(load[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def cpu_seconds() -> float:
    """Return user + system CPU seconds of this process and of its children that have been waited for.

    Children count because some tools run work in helper processes (datatrove's extractor
    sandbox). CPU time, unlike wall time, does not grow when other processes share the cores.
    """
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class Timer:
    """Wall and CPU seconds of one measured block, used as `with Timer() as timer:`."""

    wall_s: float = 0.0
    cpu_s: float = 0.0

    def __enter__(self) -> "Timer":
        self._wall = time.perf_counter()
        self._cpu = cpu_seconds()
        return self

    def __exit__(self, *exc) -> None:
        self.wall_s = time.perf_counter() - self._wall
        self.cpu_s = cpu_seconds() - self._cpu


def per_core_rate(documents: int, cpu_s: float) -> float:
    """Return documents per CPU-second, which is documents per second per core for a one-worker run."""
    return documents / cpu_s if cpu_s > 0 else 0.0


def summarize_runs(runs: list[dict], documents_key: str = "documents") -> dict:
    """Return the best and median per-core and wall rates over repeated runs of one side.

    The best run is the one least disturbed by other processes on a shared machine.
    """
    cpu_rates = [per_core_rate(run[documents_key], run["cpu_s"]) for run in runs]
    wall_rates = [run[documents_key] / run["wall_s"] if run["wall_s"] else 0.0 for run in runs]
    return {
        "repeats": len(runs),
        "docs_per_cpu_s_best": round(max(cpu_rates), 2),
        "docs_per_cpu_s_median": round(statistics.median(cpu_rates), 2),
        "docs_per_wall_s_best": round(max(wall_rates), 2),
        "docs_per_wall_s_median": round(statistics.median(wall_rates), 2),
    }


# What the datatrove venv holds: the versions the published figures were measured with.
# spaCy is there because datatrove's Gopher filters tokenize English words with it.
DATATROVE_REQUIREMENTS = ["datatrove[processing,io]==0.10.1", "spacy==3.8.18", "resiliparse==2.0.1"]


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_datatrove_venv() -> Path:
    """Return the datatrove venv's interpreter, creating the venv with pip on first use."""
    python = venv_python(DATATROVE_VENV)
    if python.exists():
        return python
    logging.getLogger(__name__).info("creating %s with %s", DATATROVE_VENV, " ".join(DATATROVE_REQUIREMENTS))
    subprocess.run([sys.executable, "-m", "venv", str(DATATROVE_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *DATATROVE_REQUIREMENTS], check=True)
    return python


def run_worker(python: Path | str, module: str, args: list[str], timeout_s: float = 3600) -> dict:
    """Run `python -m module args` from the repository root and return the JSON it prints last.

    Workers print exactly one JSON object on their last stdout line; anything else they
    print (logs, progress bars) goes to stderr.
    """
    command = [str(python), "-m", module, *args]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout_s)
    if completed.returncode != 0:
        raise RuntimeError(
            f"benchmark worker failed with exit code {completed.returncode}: {' '.join(command)}\n"
            f"{completed.stderr[-4000:]}"
        )
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    if not lines:
        raise RuntimeError(f"benchmark worker printed no result: {' '.join(command)}\n{completed.stderr[-4000:]}")
    return json.loads(lines[-1])


def bench_warc(records: int, seed: int = 0) -> Path:
    """Return the path of a generated throughput WARC with `records` responses, creating it once.

    The file repeats real HTML pages with new record ids (see make_bench_warc.py), so it is
    for throughput only, never for dedup rates. Each response also gets the
    WARC-Identified-Payload-Type header that Common Crawl writes: without it datatrove's
    WarcReader falls back to libmagic, which labels about a quarter of these real HTML pages
    application/javascript and skips them.
    """
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"bench-{records}-seed{seed}.warc.gz"
    if path.exists():
        return path
    if not MAKE_BENCH_WARC.is_file():
        raise FileNotFoundError(f"{MAKE_BENCH_WARC} not found; clone the shared data and tools beside the repository")
    generated = path.with_name(f".{path.name}.{os.getpid()}.generated")
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        subprocess.run([sys.executable, str(MAKE_BENCH_WARC), str(generated), "--records", str(records), "--seed", str(seed)],
                       check=True, stdout=subprocess.DEVNULL)
        add_payload_type_headers(generated, temporary)
        os.replace(temporary, path)
    finally:
        generated.unlink(missing_ok=True)
        temporary.unlink(missing_ok=True)
    return path


def add_payload_type_headers(source: Path, target: Path) -> None:
    """Copy a WARC, adding WARC-Identified-Payload-Type (the HTTP media type) to each response."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.warcwriter import WARCWriter

    with open(source, "rb") as stream, open(target, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for record in ArchiveIterator(stream):
            if record.rec_type == "response" and record.http_headers is not None:
                content_type = record.http_headers.get_header("Content-Type") or ""
                media_type = content_type.split(";", 1)[0].strip().lower()
                if media_type:
                    record.rec_headers.add_header("WARC-Identified-Payload-Type", media_type)
            writer.write_record(record)


def write_result(name: str, result: dict) -> Path:
    """Write one benchmark's result to bench-results/<name>.json and return the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": name, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), **result}
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return path


def print_json_line(data: dict) -> None:
    """Print `data` as the single-line JSON result a worker returns to `run_worker`."""
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()
