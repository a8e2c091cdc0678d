"""Faults injected into Ray workers for the fault tests; contains no tests.

The fault tests set `ray.worker_setup_hook: test_faults_trigger.install`, so every Ray
worker of the run calls `install` when it starts. The environment variables below choose
the fault; they are read only here, never by the pipeline's own code.

CRAWL_FAULT_FILE  base name of the input file whose processing is disturbed
CRAWL_FAULT_MODE  "pause-once": the first worker to start the file writes its pid to
                  $CRAWL_FAULT_DIR/paused and sleeps, so a test can kill it or interrupt
                  the run at a known point; later attempts go through.
                  "crash": every attempt on the file kills its own worker process (SIGKILL).
CRAWL_FAULT_DIR   folder for the `paused` marker

The fault hits the Ray worker process itself, in FileProcessor's call of process_file. The
reading below that may run in a child process of the worker, which this hook does not reach.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

PAUSE_S = 300


def install() -> None:
    """Wrap the engine's process_file so that processing CRAWL_FAULT_FILE triggers CRAWL_FAULT_MODE."""
    target = os.environ.get("CRAWL_FAULT_FILE")
    if not target:
        return
    import pipeline.engine

    original = pipeline.engine.process_file

    def process_file(path, key, config, out_dir):
        if Path(path).name == target:
            trigger()
        return original(path, key, config, out_dir)

    pipeline.engine.process_file = process_file


def trigger() -> None:
    mode = os.environ["CRAWL_FAULT_MODE"]
    if mode == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    elif mode == "pause-once":
        marker = Path(os.environ["CRAWL_FAULT_DIR"]) / "paused"
        try:
            with open(marker, "x", encoding="utf-8") as file:
                file.write(str(os.getpid()))
        except FileExistsError:
            return
        time.sleep(PAUSE_S)
    else:
        raise ValueError(f"unknown CRAWL_FAULT_MODE {mode!r}; use pause-once or crash")
