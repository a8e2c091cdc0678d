"""Faults during a run: a killed Ray worker, SIGINT and resume, an input file that kills its worker.

Every run is a `python -m pipeline run` subprocess with its own local Ray cluster and
RAY_TMPDIR, so a fault never touches the session's cluster. Faults come from the
`test_faults_trigger` worker hook; outputs are compared with one clean run of the same files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from test_cluster_support import (
    REPO,
    SMALL_INPUTS,
    WARC,
    assert_same_outputs,
    kill_processes,
    make_ray_tmpdir,
    pipeline_env,
    process_table,
    processes_of,
    run_command,
    write_config,
)

RUN_TIMEOUT_S = 420
# The file the faults hit: the last of SMALL_INPUTS, so with two workers another file is
# finished by the time a worker reaches it.
FAULT_FILE = "wget-crawl-en-0000.warc.gz"
RETRIES = 1


@pytest.fixture
def ray_tmpdir():
    folder = make_ray_tmpdir()
    yield folder
    kill_processes(processes_of(str(folder)))


@pytest.fixture(scope="module")
def inputs(shared_data) -> list[str]:
    return [str(WARC / name) for name in SMALL_INPUTS]


@pytest.fixture(scope="module")
def fault_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "faults.yaml"
    return write_config(path, {"worker_setup_hook": "test_faults_trigger.install", "file_retries": RETRIES})


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory, inputs, fault_config) -> Path:
    """The same files run without a fault, with the hook installed but idle."""
    ray_tmpdir = make_ray_tmpdir()
    out = tmp_path_factory.mktemp("clean") / "run"
    try:
        result = subprocess.run(run_command(inputs, out, "-c", str(fault_config), "--num-cpus", "2"), cwd=REPO,
                                env=pipeline_env(ray_tmpdir), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    finally:
        kill_processes(processes_of(str(ray_tmpdir)))
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def start_run(inputs, out, fault_config, ray_tmpdir, marker_dir, mode) -> subprocess.Popen:
    env = pipeline_env(ray_tmpdir, CRAWL_FAULT_FILE=FAULT_FILE, CRAWL_FAULT_MODE=mode, CRAWL_FAULT_DIR=str(marker_dir))
    return subprocess.Popen(run_command(inputs, out, "-c", str(fault_config), "--num-cpus", "2"), cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, timeout_s: float, what: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process.poll() is not None:
            _, stderr = process.communicate()
            pytest.fail(f"the run exited with {process.returncode} before {what}: {stderr[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.2)


def wait_until_gone(ray_tmpdir: Path, timeout_s: float) -> None:
    """Fail unless every process of the cluster under `ray_tmpdir` exits within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while processes_of(str(ray_tmpdir)):
        if time.monotonic() > deadline:
            table = process_table()
            left = [table[pid][1][:200] for pid in processes_of(str(ray_tmpdir)) if pid in table]
            pytest.fail(f"Ray processes still running {timeout_s} s after the run stopped: {left}")
        time.sleep(0.5)


def finished_files(out: Path) -> int:
    return len(list((out / "_state" / "process").glob("*.done")))


def file_stats(out: Path, name: str) -> dict:
    stats = json.loads((out / "stats.json").read_text())
    return stats["files"][str(WARC / name)]


def test_killed_worker_retried(tmp_path, inputs, fault_config, clean_run, ray_tmpdir):
    out = tmp_path / "run"
    process = start_run(inputs, out, fault_config, ray_tmpdir, tmp_path, "pause-once")
    marker = tmp_path / "paused"
    wait_for(marker.exists, RUN_TIMEOUT_S, "a worker reached the fault file", process)

    worker_pid = int(marker.read_text())
    os.kill(worker_pid, signal.SIGKILL)
    _, stderr = process.communicate(timeout=RUN_TIMEOUT_S)

    assert process.returncode == 0, stderr[-3000:]
    assert not Path(f"/proc/{worker_pid}").exists()
    retried = file_stats(out, FAULT_FILE)
    assert retried["attempts"] == 2
    assert retried["worker"]["pid"] != worker_pid
    assert_same_outputs(out, clean_run)


def test_sigint_then_resume(tmp_path, inputs, fault_config, clean_run, ray_tmpdir):
    out = tmp_path / "run"
    process = start_run(inputs, out, fault_config, ray_tmpdir, tmp_path, "pause-once")
    wait_for((tmp_path / "paused").exists, RUN_TIMEOUT_S, "a worker reached the fault file", process)
    wait_for(lambda: finished_files(out) == len(inputs) - 1, RUN_TIMEOUT_S, "the other files finished", process)

    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-3000:]
    assert "interrupted; run the same command again to resume" in stderr
    assert not (out / "_state" / "process.done").exists()
    assert not (out / "stats.json").exists()
    wait_until_gone(ray_tmpdir, timeout_s=60)

    # The marker is still there, so the fault hook lets the resumed run read the file.
    done_before = {path.name: path.stat().st_mtime_ns for path in (out / "_state" / "process").glob("*.done")}
    resumed = subprocess.run(run_command(inputs, out, "-c", str(fault_config), "--num-cpus", "2"), cwd=REPO,
                             env=pipeline_env(ray_tmpdir), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"process: {len(inputs) - 1} of {len(inputs)} input files already done, skipping them" in resumed.stderr
    for name, mtime in done_before.items():
        assert (out / "_state" / "process" / name).stat().st_mtime_ns == mtime, f"{name} was processed again"
    assert_same_outputs(out, clean_run)

    again = subprocess.run(run_command(inputs, out, "-c", str(fault_config), "--num-cpus", "2"), cwd=REPO,
                           env=pipeline_env(ray_tmpdir), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert again.returncode == 0, again.stderr[-3000:]
    for phase in ("process", "dedup", "write", "tokenize"):
        assert f"{phase}: already done, skipping" in again.stderr


def test_crashing_file_recorded_as_failed(tmp_path, inputs, fault_config, ray_tmpdir):
    out = tmp_path / "run"
    process = start_run(inputs, out, fault_config, ray_tmpdir, tmp_path, "crash")
    _, stderr = process.communicate(timeout=RUN_TIMEOUT_S)

    # The run finishes and writes every output, then exits 1 so a scheduler detects the lost file.
    assert process.returncode == 1, stderr[-3000:]
    assert "1 input file(s) failed after retries" in stderr
    failed = file_stats(out, FAULT_FILE)
    assert failed["failed"] is True
    assert failed["attempts"] == RETRIES + 1
    assert len(failed["errors"]) == RETRIES + 1
    assert all("exited while processing the file" in error for error in failed["errors"])
    stats = json.loads((out / "stats.json").read_text())
    assert stats["run"]["failed_files"] == [str(WARC / FAULT_FILE)]
    for name in SMALL_INPUTS:
        if name != FAULT_FILE:
            assert file_stats(out, name)["attempts"] == 1
    assert stats["run"]["documents_kept"] > 0
    assert f"{WARC / FAULT_FILE} failed after {RETRIES + 1} attempts" in stderr
