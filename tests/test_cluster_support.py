"""Helpers for tests that run the pipeline against Ray clusters of their own; contains no tests.

Each such cluster gets its own short RAY_TMPDIR, and teardown ends only the processes whose
command line names that folder, with their descendants. `ray stop` is never used, because
it ends every Ray process on the machine, other users' clusters and this session's included.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
# Resolved, because the engine keys stats.json by resolved paths and ../shared may be a symlink.
WARC = (REPO.parent / "shared" / "data" / "warc").resolve()

# Three small crawl files (about 400 KB together): enough for two workers to share, small
# enough that a run takes about a minute on two cores.
# The last file is the one the fault tests hit; wget-crawl-en-0001 keeps English pages when it fails.
SMALL_INPUTS = ["cc-main-2020-34-sample.warc.gz", "wget-crawl-en-0001.warc.gz", "wget-crawl-en-0000.warc.gz"]


def make_ray_tmpdir() -> Path:
    """A short folder for RAY_TMPDIR: Ray's Unix socket paths under it must fit in 107 bytes."""
    return Path(tempfile.mkdtemp(prefix="crawl-ray-", dir="/tmp"))


def process_table() -> dict[int, tuple[int, str]]:
    """Return a map from every visible pid to (parent pid, command line)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        table[int(entry.name)] = (parent, command)
    return table


def processes_of(marker: str, roots: tuple[int, ...] = ()) -> set[int]:
    """Return the pids whose command line contains `marker`, plus `roots`, plus all their descendants."""
    table = process_table()
    found = {pid for pid, (_, command) in table.items() if marker in command} | {pid for pid in roots if pid in table}
    found.discard(os.getpid())
    grew = True
    while grew:
        children = {pid for pid, (parent, _) in table.items() if parent in found} - found
        grew = bool(children)
        found |= children
    return found


def kill_processes(pids: set[int], grace_s: float = 5.0) -> None:
    """SIGTERM `pids`, then SIGKILL the ones still alive after `grace_s`."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
        time.sleep(0.2)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def pipeline_env(ray_tmpdir: Path, **extra: str) -> dict[str, str]:
    """The environment of a pipeline subprocess: its own Ray temp folder, and tests/ importable
    so that workers can load the fault hook."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CRAWL_FAULT_")}
    env["RAY_TMPDIR"] = str(ray_tmpdir)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(REPO)])
    env.update(extra)
    return env


def run_command(inputs: list[str], run_dir: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", "run", *inputs, "-o", str(run_dir), *options]


def write_config(path: Path, ray_section: dict) -> Path:
    path.write_text(json.dumps({"ray": ray_section}), encoding="utf-8")  # JSON is YAML
    return path


def run_outputs(run_dir: Path) -> dict[str, object]:
    """What two runs of the same inputs must share: Parquet rows, document ids and token bytes."""
    outputs: dict[str, object] = {}
    for folder in ("documents", "rejected"):
        for path in sorted((run_dir / folder).glob("*.parquet")):
            outputs[f"{folder}/{path.name}"] = pq.read_table(path).to_pylist()
    ids = [row["id"] for name, rows in outputs.items() if name.startswith("documents/") for row in rows]
    outputs["document ids"] = sorted(ids)
    for path in sorted((run_dir / "tokens").iterdir()):
        if path.is_file():
            outputs[f"tokens/{path.name}"] = path.read_bytes()
    return outputs


def assert_same_outputs(run_dir: Path, reference: Path) -> None:
    got, expected = run_outputs(run_dir), run_outputs(reference)
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert got[name] == expected[name], f"{name} differs from the clean run's"
