"""The Airflow DAG run end to end by `airflow dags test` over the real crawl files.

Airflow pins many packages, so it lives in a virtual environment of its own, created on
first use (about 2 minutes and 300 MB with apache-airflow 3.3.2 on two cores), and the DAG's
tasks call the project's Python. Set CRAWL_SKIP_AIRFLOW_TEST=1 to skip this test; nothing
else skips it, and a failed install fails it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_cluster_support import REPO, WARC, kill_processes, make_ray_tmpdir, processes_of

AIRFLOW_SPEC = "apache-airflow==3.3.2"
AIRFLOW_VENV = Path(os.environ.get("CRAWL_AIRFLOW_VENV", REPO / ".pytest_cache" / "airflow-venv"))
INSTALL_TIMEOUT_S = 1800
DAG_TIMEOUT_S = 1500
CRAWL_ID = "test-crawl"

pytestmark = pytest.mark.skipif(os.environ.get("CRAWL_SKIP_AIRFLOW_TEST") == "1",
                                reason="CRAWL_SKIP_AIRFLOW_TEST=1 is set")


@pytest.fixture(scope="session")
def airflow() -> Path:
    """Return the `airflow` command of a virtual environment with AIRFLOW_SPEC, installing it when missing."""
    command = AIRFLOW_VENV / "bin" / "airflow"
    stamp = AIRFLOW_VENV / "installed.txt"
    if command.exists() and stamp.exists() and stamp.read_text() == AIRFLOW_SPEC:
        return command
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(AIRFLOW_VENV)], check=True)
    install = subprocess.run([str(AIRFLOW_VENV / "bin" / "pip"), "install", "--quiet", AIRFLOW_SPEC],
                             capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    assert install.returncode == 0, f"pip install {AIRFLOW_SPEC} failed:\n{install.stderr[-3000:]}"
    stamp.write_text(AIRFLOW_SPEC)
    print(f"installed {AIRFLOW_SPEC} into {AIRFLOW_VENV} in {time.monotonic() - start:.0f} s")
    return command


@pytest.fixture
def ray_tmpdir():
    folder = make_ray_tmpdir()
    yield folder
    kill_processes(processes_of(str(folder)))


def airflow_env(home: Path, ray_tmpdir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "PYTHONPATH"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "CRAWL_PIPELINE_PYTHON": sys.executable,
        "CRAWL_TASK_RETRIES": "0",
        "RAY_TMPDIR": str(ray_tmpdir),
    })
    return env


def run_airflow(airflow: Path, env: dict[str, str], *arguments: str, timeout_s: float = 300) -> str:
    result = subprocess.run([str(airflow), *arguments], env=env, cwd=env["AIRFLOW_HOME"], capture_output=True,
                            text=True, timeout=timeout_s)
    assert result.returncode == 0, f"airflow {' '.join(arguments)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def json_output(stdout: str):
    """Parse the JSON that `airflow ... --output json` prints after any log lines on stdout."""
    lines = stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(("[", "{"))), None)
    assert start is not None, f"no JSON in the output:\n{stdout[-3000:]}"
    return json.loads("\n".join(lines[start:]))


def test_dag_runs_crawl_end_to_end(airflow, tmp_path, shared_data, ray_tmpdir):
    home = tmp_path / "airflow"
    home.mkdir()
    env = airflow_env(home, ray_tmpdir)
    output_root = tmp_path / "crawls"
    run_airflow(airflow, env, "db", "migrate")
    run_airflow(airflow, env, "pools", "set", "gpu", "1", "GPU hosts for the train task")

    conf = {"crawl_id": CRAWL_ID, "input_paths": [str(WARC)], "output_root": str(output_root),
            "python": sys.executable}
    run_airflow(airflow, env, "dags", "test", "crawl_pipeline", "--conf", json.dumps(conf), timeout_s=DAG_TIMEOUT_S)

    runs = json_output(run_airflow(airflow, env, "dags", "list-runs", "crawl_pipeline", "--output", "json"))
    assert [run["state"] for run in runs] == ["success"]
    states = json_output(run_airflow(airflow, env, "tasks", "states-for-dag-run", "crawl_pipeline", runs[0]["run_id"],
                                     "--output", "json"))
    assert {state["task_id"]: state["state"] for state in states} == {
        "fetch": "skipped", "process": "success", "dedup": "success", "write": "success",
        "tokenize": "success", "report": "success", "train": "skipped"}

    run_dir = output_root / CRAWL_ID / "run"
    for phase in ("process", "dedup", "write", "tokenize", "stats"):
        assert (run_dir / "_state" / f"{phase}.done").exists(), phase
    stats = json.loads((run_dir / "stats.json").read_text())
    assert len(stats["files"]) == len(list(WARC.iterdir()))
    assert stats["run"]["failed_files"] == []
    assert stats["run"]["documents_kept"] > 0
    manifest = json.loads((run_dir / "tokens" / "manifest.json").read_text())
    assert manifest["train_tokens"] + manifest["val_tokens"] == stats["run"]["tokens"]
    assert manifest["documents"] == stats["run"]["documents_kept"]
    assert (run_dir / "report.html").exists()
