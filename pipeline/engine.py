"""The run as a sequence of Ray phases over a run directory, each resumable from its markers.

process (Ray Data actor pool, one input file per call) -> dedup (Ray Data groupby over the
whole run) -> write (documents/ and rejected/ per input file) -> tokenize -> stats.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import shutil
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.config import ConfigError, dump_config
from pipeline.progress import Progress
from pipeline.readers.jsonl import JSONL_SUFFIXES
from pipeline.process import process_file, write_json_atomic, write_parquet_atomic
from pipeline.stages.base import StageStats, with_reason
from pipeline.validate import validate_run

log = logging.getLogger(__name__)

PHASES = ["process", "dedup", "write", "tokenize", "stats"]
ARCHIVE_SUFFIXES = (".warc", ".warc.gz", ".wet", ".wet.gz", ".arc", ".arc.gz", ".wat", ".wat.gz") + JSONL_SUFFIXES


def expand_inputs(inputs: list[str]) -> list[str]:
    """Turn files, folders and globs into a sorted list of archive files; fail on a missing path."""
    found: set[str] = set()
    for item in inputs:
        matches = sorted(glob.glob(item, recursive=True)) if glob.has_magic(item) else [item]
        if not matches:
            raise ConfigError(f"input glob {item!r} matches no file; check the pattern and quote it for the shell")
        for match in matches:
            path = Path(match)
            if path.is_dir():
                files = [p for p in sorted(path.rglob("*")) if p.is_file() and p.name.lower().endswith(ARCHIVE_SUFFIXES)]
                if not files:
                    raise ConfigError(f"input folder {path} contains no WARC, WET, ARC or JSONL files ({', '.join(ARCHIVE_SUFFIXES)})")
                found.update(str(p.resolve()) for p in files)
            elif path.is_file():
                if not os.access(path, os.R_OK):
                    raise ConfigError(f"input file {path} is not readable; check its permissions")
                found.add(str(path.resolve()))
            else:
                raise ConfigError(f"input path {path} does not exist; give WARC, WET or ARC files, folders or globs")
    return sorted(found)


def input_key(path: str) -> str:
    """Return the file name stem for an input's outputs: a hash of its path, never text from the archive."""
    return hashlib.sha1(path.encode("utf-8")).hexdigest()[:16]


class RunDirectory:
    """Paths and completion markers of one run directory."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.state = self.root / "_state"
        self.process = self.state / "process"
        self.dedup = self.state / "dedup"
        self.documents = self.root / "documents"
        self.rejected = self.root / "rejected"
        self.tokens = self.root / "tokens"

    def create(self) -> None:
        for folder in (self.state, self.process, self.dedup, self.documents, self.rejected):
            folder.mkdir(parents=True, exist_ok=True)

    def phase_done(self, phase: str) -> bool:
        return (self.state / f"{phase}.done").exists()

    def mark_done(self, phase: str, details: dict | None = None) -> None:
        write_json_atomic(details or {}, self.state / f"{phase}.done")

    def clear_from(self, phase: str) -> None:
        """Remove the markers of `phase` and every later phase, so they run again."""
        for later in PHASES[PHASES.index(phase):]:
            (self.state / f"{later}.done").unlink(missing_ok=True)


# Config sections that describe where and how a run executes, not what it produces, so a
# resume may change them.
EXECUTION_SECTIONS = {"ray"}


def check_config_matches(run: RunDirectory, config: dict[str, Any]) -> None:
    """A rerun on a run directory must use the config that made it, or results would mix."""
    path = run.root / "config.yaml"
    if not path.exists():
        return
    import yaml

    previous = yaml.safe_load(path.read_text(encoding="utf-8"))
    current = yaml.safe_load(yaml.safe_dump(config, sort_keys=False))
    changed = sorted(
        section for section in set(previous) | set(current)
        if section not in EXECUTION_SECTIONS and previous.get(section) != current.get(section)
    )
    if changed:
        raise ConfigError(
            f"{path} was written with another configuration (sections differ: {', '.join(changed)}); "
            "use a new output directory, or the same -c file to resume"
        )


def init_ray(config: dict[str, Any], address: str | None, num_cpus: int | None) -> None:
    """Join the cluster at `address` (or `ray.address`), or start a local one bound to 127.0.0.1."""
    import ray

    if ray.is_initialized():
        return
    ray_config = config["ray"]
    address = address or ray_config["address"]
    runtime_env = {}
    if ray_config["worker_setup_hook"]:
        runtime_env["worker_process_setup_hook"] = ray_config["worker_setup_hook"]
    if address:
        log.info("joining the Ray cluster at %s", address)
        ray.init(address=address, runtime_env=runtime_env or None, log_to_driver=False, configure_logging=False)
        return
    # NOTE: Ray 2.60 replaces a loopback _node_ip_address with the host's routable address
    # (services.resolve_ip_for_localhost), and its GCS, raylet and worker gRPC servers listen
    # on every interface whatever the address. Ray's token authentication, on by default for
    # a local cluster unless RAY_AUTH_MODE=disabled is set, is what guards those ports.
    ray.init(
        num_cpus=num_cpus or ray_config["num_cpus"],
        include_dashboard=ray_config["include_dashboard"],
        dashboard_host=ray_config["dashboard_host"],
        _node_ip_address="127.0.0.1",
        runtime_env=runtime_env or None,
        log_to_driver=False,
        configure_logging=False,
    )


def worker_identity() -> dict[str, Any]:
    """Return the Ray node id, host name and pid of this process, as stats.json records them per file."""
    import ray

    return {"node_id": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(), "pid": os.getpid()}


class FileProcessor:
    """A Ray Data actor: processes one input file per call; models stay loaded between calls.

    A worker process that dies loses its memory, so each attempt is counted on disk in
    `<key>.attempts.json` before it starts. Ray Data restarts a dead actor and calls it again
    with the same file. Once the file has had `ray.file_retries` retries, the call writes
    `<key>.failed.json` with the errors of every attempt and does not try again.
    """

    def __init__(self, config: dict[str, Any], out_dir: str):
        self.config = config
        self.out_dir = Path(out_dir)
        self.retries = config["ray"]["file_retries"]
        self.worker = worker_identity()

    def __call__(self, batch: dict) -> dict:
        results = [json.dumps(self.process_with_retries(str(path), str(key))) for path, key in zip(batch["path"], batch["key"])]
        return {"result": results}

    def process_with_retries(self, path: str, key: str) -> dict[str, Any]:
        attempts_path = self.out_dir / f"{key}.attempts.json"
        while True:
            attempts = read_json(attempts_path) or {"attempts": 0, "errors": []}
            if attempts["attempts"] > self.retries:
                failure = {"path": path, "key": key, "failed": True, **attempts}
                write_json_atomic(failure, self.out_dir / f"{key}.failed.json")
                return failure

            # The attempt is recorded before the work starts. If this process dies, this
            # placeholder error stays on disk and describes the death to the next attempt.
            attempts["attempts"] += 1
            attempts["worker"] = self.worker
            attempts["errors"].append(
                f"attempt {attempts['attempts']}: the worker process (pid {self.worker['pid']} on "
                f"{self.worker['host']}) exited while processing the file"
            )
            write_json_atomic(attempts, attempts_path)
            try:
                result = process_file(path, key, self.config, str(self.out_dir))
            except Exception as error:  # a bad file must not stop the run; it is retried, then recorded
                log.warning("process: attempt %d on %s failed", attempts["attempts"], path, exc_info=True)
                attempts["errors"][-1] = f"attempt {attempts['attempts']}: {type(error).__name__}: {error}"
                write_json_atomic(attempts, attempts_path)
                continue
            attempts["errors"].pop()
            write_json_atomic(attempts, attempts_path)
            return {**result, "attempts": attempts["attempts"], "worker": self.worker}


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def run_process_phase(run: RunDirectory, inputs: list[str], config: dict[str, Any]) -> dict[str, Any]:
    import ray
    from ray.data import ActorPoolStrategy

    pending = [(path, input_key(path)) for path in inputs if not (run.process / f"{input_key(path)}.done").exists()]
    if len(pending) < len(inputs):
        log.info("process: %d of %d input files already done, skipping them", len(inputs) - len(pending), len(inputs))
    # Files that failed in an earlier run get a fresh retry budget.
    for _, key in pending:
        (run.process / f"{key}.attempts.json").unlink(missing_ok=True)
        (run.process / f"{key}.failed.json").unlink(missing_ok=True)
    if not pending:
        return {"files": len(inputs), "failed": 0}

    concurrency = config["ray"]["process_concurrency"] or max(1, int(ray.cluster_resources().get("CPU", 1)))
    concurrency = min(concurrency, len(pending))
    items = [{"path": path, "key": key} for path, key in pending]
    dataset = ray.data.from_items(items, override_num_blocks=len(items))
    # Ray Data's actor pool restarts a dead actor and resubmits its task without limit
    # (max_restarts=-1, max_task_retries=-1 are its defaults in Ray 2.60); FileProcessor
    # bounds the attempts per file itself, so a file that kills its worker cannot loop forever.
    # One file in flight per actor spreads the files over every worker and node, and a dead
    # actor takes only its current file with it.
    results = dataset.map_batches(
        FileProcessor,
        fn_constructor_kwargs={"config": config, "out_dir": str(run.process)},
        batch_size=1,
        compute=ActorPoolStrategy(size=concurrency, max_tasks_in_flight_per_actor=1),
        num_cpus=1,
    )
    failed = 0
    sizes = {path: os.path.getsize(path) for path, _ in pending}
    with Progress("process", total_bytes=sum(sizes.values()), total_files=len(pending)) as progress:
        for row in results.iter_rows():
            result = json.loads(row["result"])
            if result.get("failed"):
                failed += 1
                log.error("process: %s failed after %d attempts, recorded in stats.json: %s",
                          result["path"], result["attempts"], result["errors"][-1])
                progress.file_done(result["path"], documents=0, bytes_in=sizes.get(result["path"], 0), seconds=0.0, errors=1)
                continue
            read = result.get("read", {})
            progress.file_done(result["path"], documents=read.get("documents", 0), bytes_in=sizes.get(result["path"], 0),
                               seconds=result.get("seconds") or 0.0, errors=len(read.get("errors", [])))
    log.info("%s", progress.summary())
    return {"files": len(inputs), "failed": failed}


def kept_parts(run: RunDirectory, inputs: list[str]) -> list[Path]:
    parts = [run.process / f"{input_key(path)}.kept.parquet" for path in inputs]
    return [part for part in parts if part.exists()]


EXACT_PARTITIONS = 16


def partition_text_hashes(path: str, partitions: int) -> list[pa.Table]:
    """Read one part's (id, date, text_hash) and split the rows by text_hash into `partitions` tables."""
    table = pq.read_table(path, columns=["id", "date", "text_hash"])
    # text_hash is a hex digest, so its first 8 hex digits are uniformly distributed.
    buckets = np.array([int(value[:8], 16) % partitions for value in table.column("text_hash").to_pylist()], dtype=np.int64)
    return [table.filter(pa.array(buckets == index)) for index in range(partitions)]


def exact_duplicates_in_partition(*pieces: pa.Table) -> pa.Table:
    """Return every member of each text_hash group but its survivor (earliest date, then smallest id)."""
    table = pa.concat_tables(pieces)
    dropped_ids, survivors = [], []
    groups: dict[str, list[tuple[str, str]]] = {}
    for doc_id, date, digest in zip(*(table.column(name).to_pylist() for name in ("id", "date", "text_hash"))):
        groups.setdefault(digest, []).append((date or "", doc_id))
    for members in groups.values():
        if len(members) < 2:
            continue
        members.sort()
        dropped_ids += [doc_id for _, doc_id in members[1:]]
        survivors += [members[0][1]] * (len(members) - 1)
    return pa.table({"id": pa.array(dropped_ids, pa.string()), "duplicate_of": pa.array(survivors, pa.string())})


def find_exact_duplicates(parts: list[Path]) -> pa.Table:
    """Group documents by text_hash across the run with a hash-partitioned shuffle of Ray tasks."""
    import ray

    # At least two partitions, because with num_returns=1 a task's list would come back as one object.
    partitions = min(EXACT_PARTITIONS, max(2, len(parts)))
    split = ray.remote(partition_text_hashes).options(num_returns=partitions)
    pieces = [split.remote(str(part), partitions) for part in parts]
    reduce = ray.remote(exact_duplicates_in_partition)
    results = ray.get([reduce.remote(*[piece[index] for piece in pieces]) for index in range(partitions)])
    return pa.concat_tables(results).sort_by("id")


def write_survivor_parts(run: RunDirectory, parts: list[Path], exact_path: Path, work: Path) -> list[str]:
    """Write each part's (id, date, text) minus exact duplicates, as input to near and line dedup."""
    excluded = pq.read_table(exact_path, columns=["id"]).column("id") if exact_path.exists() else None
    survivors = []
    work.mkdir(parents=True, exist_ok=True)
    for part in parts:
        table = pq.read_table(part, columns=["id", "date", "text"])
        if excluded is not None and len(excluded):
            table = table.filter(pc.invert(pc.is_in(table.column("id"), excluded.combine_chunks())))
        survivor_path = work / f"input-{part.name}"
        write_parquet_atomic(table, survivor_path)
        survivors.append(str(survivor_path))
    return survivors


def run_dedup_phase(run: RunDirectory, inputs: list[str], config: dict[str, Any]) -> dict[str, Any]:
    start = time.perf_counter()
    parts = kept_parts(run, inputs)
    dedup_config = config["dedup"]
    summary: dict[str, Any] = {"exact_duplicates": 0, "near_duplicates": 0, "line_dedup": False}
    exact_path = run.dedup / "exact.parquet"
    near_path = run.dedup / "near.parquet"
    lines_dir = run.dedup / "lines"
    for stale in (exact_path, near_path):
        stale.unlink(missing_ok=True)
    shutil.rmtree(lines_dir, ignore_errors=True)

    if parts and dedup_config["exact"]["enabled"]:
        duplicates = find_exact_duplicates(parts)
        write_parquet_atomic(duplicates, exact_path)
        summary["exact_duplicates"] = duplicates.num_rows

    minhash = dedup_config.get("minhash") or {}
    lines = dedup_config.get("lines") or {}
    if parts and (minhash.get("enabled") or lines.get("enabled")):
        from pipeline.dedup import line_dedup, near_dedup

        work = run.dedup / "work"
        survivors = write_survivor_parts(run, parts, exact_path, work)
        near = None
        if minhash.get("enabled"):
            near = near_dedup(survivors, minhash, str(work / "minhash"))
            write_parquet_atomic(near, near_path)
            summary["near_duplicates"] = int(pc.sum(near.column("duplicate")).as_py() or 0)
        if lines.get("enabled"):
            # The stage keeps only a path to the frequent-line hashes, under lines_dir.
            line_dedup(survivors, lines, str(lines_dir), near_duplicates=near)
            summary["line_dedup"] = True
        shutil.rmtree(work, ignore_errors=True)

    summary["seconds"] = round(time.perf_counter() - start, 4)
    return summary


def load_dedup_results(run: RunDirectory) -> tuple[dict[str, str], dict[str, tuple[str, bool]]]:
    exact: dict[str, str] = {}
    near: dict[str, tuple[str, bool]] = {}
    exact_path = run.dedup / "exact.parquet"
    if exact_path.exists():
        table = pq.read_table(exact_path)
        exact = dict(zip(table.column("id").to_pylist(), table.column("duplicate_of").to_pylist()))
    near_path = run.dedup / "near.parquet"
    if near_path.exists():
        table = pq.read_table(near_path)
        clusters = [str(value) for value in table.column("dedup_cluster").to_pylist()]
        near = dict(zip(table.column("id").to_pylist(), zip(clusters, table.column("duplicate").to_pylist())))
    return exact, near


def run_write_phase(run: RunDirectory, inputs: list[str], config: dict[str, Any]) -> dict[str, Any]:
    """Write documents/<key>.parquet and rejected/<key>.parquet for every input file."""
    # NOTE: the dedup decisions are loaded into the driver as dicts keyed by document id,
    # which fits tens of millions of ids in memory, not billions.
    from pipeline.dedup.lines import LINE_HASHES_FILE, LineDedup
    from pipeline.stages.base import apply_stage

    start = time.perf_counter()
    exact, near = load_dedup_results(run)
    stats = StageStats(stage="dedup")
    hashes_path = run.dedup / "lines" / LINE_HASHES_FILE
    min_words_after = int(config["dedup"]["lines"]["min_words_after"])
    line_stage = LineDedup(str(hashes_path), min_words_after) if hashes_path.exists() else None
    line_stats = StageStats(stage="line_dedup")
    for path in inputs:
        key = input_key(path)
        kept_path = run.process / f"{key}.kept.parquet"
        rejected_path = run.process / f"{key}.rejected.parquet"
        rejected_tables = [pq.read_table(rejected_path)] if rejected_path.exists() else []
        if kept_path.exists():
            table = pq.read_table(kept_path)
            table, dropped = apply_dedup(table, exact, near, stats)
            if dropped is not None:
                rejected_tables.append(dropped)
            if line_stage is not None:
                table, dropped, batch_stats = apply_stage(line_stage, table)
                line_stats.add(batch_stats)
                if dropped is not None:
                    rejected_tables.append(dropped)
            if table.num_rows:
                write_parquet_atomic(table, run.documents / f"{key}.parquet")
        if rejected_tables:
            rejected = pa.concat_tables(rejected_tables, promote_options="default")
            write_parquet_atomic(rejected, run.rejected / f"{key}.parquet")
    stats.seconds = time.perf_counter() - start - line_stats.seconds
    stages = [stats.to_dict()] + ([line_stats.to_dict()] if line_stage is not None else [])
    return {"stages": stages}


def apply_dedup(table: pa.Table, exact: dict[str, str], near: dict[str, tuple[str, bool]], stats: StageStats):
    from pipeline.stages.base import text_bytes

    ids = table.column("id").to_pylist()
    clusters, reasons = [], []
    for doc_id in ids:
        if doc_id in exact:
            clusters.append(exact[doc_id])
            reasons.append("exact_duplicate")
        elif doc_id in near:
            cluster, duplicate = near[doc_id]
            clusters.append(cluster)
            reasons.append("near_duplicate" if duplicate else None)
        else:
            clusters.append(doc_id)
            reasons.append(None)
    table = table.append_column("dedup_cluster", pa.array(clusters, pa.string()))
    stats.documents_in += table.num_rows
    stats.bytes_in += text_bytes(table)
    keep = pa.array([reason is None for reason in reasons])
    kept = table.filter(keep)
    stats.documents_out += kept.num_rows
    stats.bytes_out += text_bytes(kept)
    dropped_reasons = [reason for reason in reasons if reason is not None]
    for reason in dropped_reasons:
        stats.dropped[reason] = stats.dropped.get(reason, 0) + 1
    dropped = with_reason(table.filter(pc.invert(keep)), "dedup", dropped_reasons) if dropped_reasons else None
    return kept, dropped


def document_parts(run: RunDirectory, inputs: list[str]) -> list[str]:
    parts = [run.documents / f"{input_key(path)}.parquet" for path in inputs]
    return [str(part) for part in parts if part.exists()]


def run_tokenize_phase(run: RunDirectory, inputs: list[str], config: dict[str, Any]) -> dict[str, Any]:
    from pipeline.tokenize import tokenize_phase

    work = run.state / "tokenize"
    work.mkdir(exist_ok=True)
    return tokenize_phase(document_parts(run, inputs), str(run.tokens), config["tokenize"], str(work))


def process_seconds(run: RunDirectory) -> float:
    marker = run.state / "process.done"
    return json.loads(marker.read_text(encoding="utf-8")).get("phase_seconds", 0.0) if marker.exists() else 0.0


def merge_stats(run: RunDirectory, inputs: list[str], started: str) -> dict[str, Any]:
    """Sum the per-file stage counts and add the run-wide phases, in run order."""
    stages: dict[str, StageStats] = {}
    files: dict[str, Any] = {}
    failed: list[str] = []
    for path in inputs:
        key = input_key(path)
        failure = read_json(run.process / f"{key}.failed.json")
        if failure is not None:
            failed.append(path)
            files[path] = {"records": 0, "documents": 0, "skipped": {}, "errors": failure["errors"], "failed": True,
                           "attempts": failure["attempts"], "worker": failure.get("worker"), "seconds": 0.0}
            continue
        stats_path = run.process / f"{key}.stats.json"
        if not stats_path.exists():
            continue
        result = json.loads(stats_path.read_text(encoding="utf-8"))
        files[path] = {**result["read"], "documents_kept": result["documents_kept"], "seconds": result["seconds"]}
        attempts = read_json(run.process / f"{key}.attempts.json")
        if attempts is not None:
            files[path]["attempts"] = attempts["attempts"]
            files[path]["worker"] = attempts["worker"]
        for entry in result["stages"]:
            stages.setdefault(entry["stage"], StageStats(stage=entry["stage"])).add(StageStats.from_dict(entry))
    ordered = [stats.to_dict() for stats in stages.values()]

    phase_details = {}
    for phase in ("dedup", "write", "tokenize"):
        marker = run.state / f"{phase}.done"
        phase_details[phase] = json.loads(marker.read_text(encoding="utf-8")) if marker.exists() else {}
    for entry in phase_details["write"].get("stages", []):
        if entry["stage"] == "dedup":
            # The dedup stage's time is the run-wide dedup phase plus applying its decisions.
            entry = {**entry, "seconds": round(entry["seconds"] + phase_details["dedup"].get("seconds", 0.0), 4)}
        ordered.append(entry)

    tokens = phase_details["tokenize"]
    documents_kept = ordered[-1]["documents_out"] if ordered else 0
    finished = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return {
        "run": {
            "run_dir": str(run.root.resolve()),
            "inputs": inputs,
            "started": started,
            "finished": finished,
            # Time spent in phases, so idle gaps between an interrupted run and its resume do not count.
            "seconds": round(sum(phase_details[phase].get("phase_seconds", 0.0) for phase in phase_details)
                             + process_seconds(run), 3),
            "documents_kept": documents_kept,
            "tokens": tokens.get("train_tokens", 0) + tokens.get("val_tokens", 0),
            "failed_files": failed,
        },
        "stages": ordered,
        "files": files,
        "dedup": phase_details["dedup"],
        "tokens": tokens,
    }


def run_pipeline(inputs: list[str], run_dir: str, config: dict[str, Any], phase: str | None = None,
                 address: str | None = None, num_cpus: int | None = None) -> dict[str, Any]:
    """Run every unfinished phase (or only `phase`) of the pipeline; return the stats."""
    inputs = expand_inputs(inputs)
    validate_run(config, inputs)
    run = RunDirectory(run_dir)
    check_config_matches(run, config)
    run.create()
    state_inputs = run.state / "inputs.json"
    if state_inputs.exists() and json.loads(state_inputs.read_text(encoding="utf-8")) != inputs:
        # New input files invalidate the run-wide phases; finished files stay finished.
        run.clear_from("dedup")
    write_json_atomic(inputs, state_inputs)
    dump_config(config, run.root / "config.yaml")
    started_path = run.state / "started"
    if not started_path.exists():
        started_path.write_text(datetime.now(timezone.utc).isoformat(timespec="seconds"), encoding="utf-8")
    started = started_path.read_text(encoding="utf-8")

    phases = [phase] if phase else PHASES
    if phase:
        check_earlier_phases(run, phase)
        run.clear_from(phase)
    init_ray(config, address, num_cpus)
    log.info("run %s: %d input files, phases %s", run.root, len(inputs), ", ".join(phases))

    for name in phases:
        if name != "stats" and run.phase_done(name):
            log.info("%s: already done, skipping", name)
            continue
        log.info("%s: starting", name)
        phase_start = time.perf_counter()
        details = run_phase(name, run, inputs, config, started)
        details = {**details, "phase_seconds": round(time.perf_counter() - phase_start, 3)}
        # Later phases read this phase's output, so their old markers no longer hold.
        later = PHASES[PHASES.index(name) + 1:]
        if later:
            run.clear_from(later[0])
        run.mark_done(name, details)
        log.info("%s: done in %.1f s", name, time.perf_counter() - phase_start)
    stats_path = run.root / "stats.json"
    if run.phase_done("stats") and stats_path.exists():
        return json.loads(stats_path.read_text(encoding="utf-8"))
    # A single earlier phase (--phase) leaves stats.json to the stats phase; report the counts so far.
    return merge_stats(run, inputs, started)


def check_earlier_phases(run: RunDirectory, phase: str) -> None:
    if phase not in PHASES:
        raise ConfigError(f"unknown phase {phase!r}; phases are {', '.join(PHASES)}")
    missing = [earlier for earlier in PHASES[:PHASES.index(phase)] if not run.phase_done(earlier)]
    if missing:
        raise ConfigError(f"phase {phase} needs {', '.join(missing)} done first in {run.root}; run those phases first")


def run_phase(name: str, run: RunDirectory, inputs: list[str], config: dict[str, Any], started: str) -> dict[str, Any]:
    if name == "process":
        return run_process_phase(run, inputs, config)
    if name == "dedup":
        return run_dedup_phase(run, inputs, config)
    if name == "write":
        return run_write_phase(run, inputs, config)
    if name == "tokenize":
        if not config["tokenize"]["enabled"]:
            return {}
        return run_tokenize_phase(run, inputs, config)
    stats = merge_stats(run, inputs, started)
    write_json_atomic(stats, run.root / "stats.json")
    write_report(run)
    return {}


def write_report(run: RunDirectory) -> None:
    try:
        from pipeline.report import write_report as render
    except ImportError:
        return
    try:
        render(str(run.root), str(run.root / "report.html"))
    except Exception:  # the report is a view of finished outputs; a bug in it must not fail the run
        log.exception("writing %s failed; the run's outputs and stats.json are complete", run.root / "report.html")
