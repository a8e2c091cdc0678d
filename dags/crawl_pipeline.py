"""Airflow DAG: one Common Crawl crawl through the pipeline, one task per phase.

Each task runs `python -m pipeline ...` with the project's Python, so Airflow never imports
the pipeline package and its dependencies stay apart from Airflow's. The phases keep their
completion markers in the run directory, so a failed task is retried alone and skips the
input files it already finished.

Layout under `output_root/crawl_id/`: `warc/` (fetched archives), `run/` (the run
directory), `checkpoints/` (the optional training run).
"""

from __future__ import annotations

import os
import shlex
from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG, Param, task
from airflow.sdk.exceptions import AirflowSkipException

# Defaults for the parameters, overridable per deployment without editing this file.
DEFAULT_PYTHON = os.environ.get("CRAWL_PIPELINE_PYTHON", "python")
DEFAULT_OUTPUT_ROOT = os.environ.get("CRAWL_OUTPUT_ROOT", "/data/crawls")
DEFAULT_RAY_ADDRESS = os.environ.get("CRAWL_RAY_ADDRESS", "")
# The Airflow pool that admits the training task; create it with one slot per GPU host.
GPU_POOL = os.environ.get("CRAWL_GPU_POOL", "gpu")
# Retries of a failed task; each retry resumes the phase from its completion markers.
TASK_RETRIES = int(os.environ.get("CRAWL_TASK_RETRIES", "2"))

# A crawl id becomes a folder name, so it may not contain "/" or start with ".".
CRAWL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"

PARAMS = {
    "crawl_id": Param("CC-MAIN-2024-22", type="string", pattern=CRAWL_ID_PATTERN,
                      description="Common Crawl crawl id; also the folder name under output_root"),
    "input_paths": Param([], type="array", items={"type": "string"},
                         description="WARC/WET/ARC files, folders or globs; when given, the fetch task is skipped"),
    "output_root": Param(DEFAULT_OUTPUT_ROOT, type="string", minLength=1,
                         description="folder that contains one folder per crawl id; every Ray node must see it at this path"),
    "ray_address": Param(DEFAULT_RAY_ADDRESS, type="string",
                         description="Ray cluster to join (e.g. ray-head:6379); empty starts a local cluster per task"),
    "python": Param(DEFAULT_PYTHON, type="string", minLength=1,
                    description="Python with the pipeline installed: a path, or a command split like a shell "
                                "would, e.g. `docker compose -f docker/compose.yaml exec -T ray-head python`"),
    "config": Param("", type="string", description="pipeline config file (-c); empty uses configs/default.yaml"),
    "fetch_args": Param([], type="array", items={"type": "string"},
                        description="extra arguments for `pipeline fetch`, e.g. a limit on files"),
    "train": Param(False, type="boolean", description="train the model on the tokens, in the GPU pool"),
    "train_args": Param([], type="array", items={"type": "string"},
                        description="extra arguments for `python -m model.train`, e.g. --max-steps 1000"),
}


def crawl_folder(params: dict) -> str:
    return os.path.join(params["output_root"], params["crawl_id"])


def run_dir(params: dict) -> str:
    return os.path.join(crawl_folder(params), "run")


def inputs(params: dict) -> list[str]:
    return list(params["input_paths"]) or [os.path.join(crawl_folder(params), "warc")]


def python_command(params: dict) -> list[str]:
    return shlex.split(params["python"])


def shell(arguments: list[str]) -> str:
    return " ".join(shlex.quote(argument) for argument in arguments)


def phase_command(params: dict, phase: str) -> str:
    """`pipeline run INPUT... -o RUN_DIR --phase PHASE`, joining the cluster when one is given."""
    arguments = [*python_command(params), "-m", "pipeline", "run", *inputs(params), "-o", run_dir(params), "--phase", phase]
    if params["config"]:
        arguments += ["-c", params["config"]]
    if params["ray_address"]:
        arguments += ["--address", params["ray_address"]]
    return shell(arguments)


with DAG(
    dag_id="crawl_pipeline",
    description="Common Crawl archives to deduplicated, tokenized shards, one task per pipeline phase",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    params=PARAMS,
    default_args={"retries": TASK_RETRIES, "retry_delay": timedelta(minutes=2)},
    tags=["crawl-pipeline"],
    doc_md=__doc__,
) as dag:

    @task.bash
    def fetch(params=None) -> str:
        if params["input_paths"]:
            raise AirflowSkipException("input_paths is set, so there is nothing to fetch")
        output = os.path.join(crawl_folder(params), "warc")
        return shell([*python_command(params), "-m", "pipeline", "fetch", "--crawl", params["crawl_id"], "-o", output,
                      *params["fetch_args"]])

    # A skipped fetch must not skip the phases after it.
    @task.bash(trigger_rule="none_failed")
    def process(params=None) -> str:
        return phase_command(params, "process")

    @task.bash
    def dedup(params=None) -> str:
        return phase_command(params, "dedup")

    @task.bash
    def write(params=None) -> str:
        return phase_command(params, "write")

    @task.bash
    def tokenize(params=None) -> str:
        return phase_command(params, "tokenize")

    @task.bash
    def report(params=None) -> str:
        return phase_command(params, "stats")

    @task.bash(pool=GPU_POOL)
    def train(params=None) -> str:
        if not params["train"]:
            raise AirflowSkipException("train is false")
        arguments = [*python_command(params), "-m", "model.train", "--data", os.path.join(run_dir(params), "tokens"),
                     "-o", os.path.join(crawl_folder(params), "checkpoints"), *params["train_args"]]
        return shell(arguments)

    fetch() >> process() >> dedup() >> write() >> tokenize() >> report() >> train()
