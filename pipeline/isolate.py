"""Run the read and stage loop of `process_file` in a child process that may crash or hang.

A crash in native code (FastWARC, resiliparse, fastText) or a record that never finishes then
costs one record instead of the worker. The child sends each finished batch to the parent, and a
shared array contains the offset of the record it is on. When the child dies or stops making
progress for `read.record_timeout_s`, the parent reruns the unfinished batch one record per
batch to find the record, counts it in `failed_records` with its offset, and resumes after it.
Batches arrive in file order and every stage works row by row, so the outputs do not depend
on where a crash happened.
"""

from __future__ import annotations

import io
import itertools
import logging
import mmap
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
from multiprocessing.connection import Connection

from pipeline.readers.scan import ArchiveBytes, is_gzip
from pipeline.readers.warc import ReadStats, ResumePoint
from pipeline.stages.base import StageStats

log = logging.getLogger(__name__)

# Slots of the shared progress array.
OFFSET, ORDINAL, PHASE, SINGLE = range(4)
READING, STAGES = 0, 1
POLL_S = 0.2
STARTUP_TIMEOUT_S = 300


class WorkerError(RuntimeError):
    """The child failed before reading any record (stage setup, a missing model); not a record's fault."""


# Child side.

def table_to_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def table_from_bytes(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(data).read_all()


def sized_batches(iterator: Iterator, sizes: Iterator[int]) -> Iterator[list]:
    size = next(sizes)
    batch: list = []
    for item in iterator:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
            size = next(sizes)
    if batch:
        yield batch


def child_main(connection, jobs, progress) -> None:
    """Serve jobs until the parent closes the pipe; one job is one input file from a resume point."""
    while True:
        try:
            job = jobs.recv()
        except (EOFError, OSError):
            return
        started = []
        try:
            run_job(connection, progress, started, *job)
        except Exception as error:
            if not started:
                connection.send(("error", traceback.format_exc()))
                continue
            # A Python exception on one record is handled like a crash: the parent counts the
            # record at the current offset as failed and resumes after it.
            log.error("record at offset %d failed:\n%s", progress[OFFSET], traceback.format_exc())
            connection.send(("crashed", f"{type(error).__name__}: {error}"))
            os._exit(70)


def serve(job_fd: int, result_fd: int, progress_fd: int) -> None:
    # Ctrl-C reaches the whole process group; the parent decides when the child stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    progress_map = mmap.mmap(progress_fd, 8 * 4)
    progress = memoryview(progress_map).cast("q")
    jobs = Connection(job_fd, writable=False)
    results = Connection(result_fd, readable=False)
    child_main(results, jobs, progress)


def run_job(connection, progress, started: list, path: str, config: dict[str, Any], specs: list, start: ResumePoint,
            single_records: int) -> None:
    from pipeline.process import BATCH_RECORDS, build_stages, make_reader, process_batch

    progress[OFFSET], progress[ORDINAL], progress[PHASE] = -1, 0, READING
    progress[SINGLE] = 1 if single_records else 0
    stages = build_stages(config, specs)
    reader = make_reader(config["read"], progress)
    read_stats = ReadStats()
    connection.send(("started",))
    started.append(True)

    sizes = itertools.chain(itertools.repeat(1, single_records), itertools.repeat(BATCH_RECORDS))
    done = 0
    read_start = time.perf_counter()
    for candidates in sized_batches(reader.read(path, read_stats, start), sizes):
        read_seconds = time.perf_counter() - read_start
        if progress[SINGLE]:
            # Counts of every record read so far but this one, for the parent to use if the
            # stages crash on it.
            connection.send(("reading", read_stats_without(read_stats, candidates)))
        progress[PHASE] = STAGES
        kept, rejected, batch_stats, read_bytes = process_batch(candidates, stages)
        connection.send((
            "batch",
            table_to_bytes(kept) if kept.num_rows else None,
            [table_to_bytes(table) for table in rejected],
            [stats.to_dict() for stats in batch_stats],
            read_seconds,
            read_bytes,
            read_stats.to_dict(),
            int(progress[OFFSET]),
            int(progress[ORDINAL]),
        ))
        done += len(candidates)
        progress[SINGLE] = 1 if done < single_records else 0
        progress[PHASE] = READING
        read_start = time.perf_counter()
    connection.send(("done", read_stats.to_dict()))


def read_stats_without(read_stats: ReadStats, candidates: list) -> dict:
    """Return `read_stats` as a dict with the counts of `candidates` taken out again."""
    pending = ReadStats.from_dict(read_stats.to_dict())
    for candidate in candidates:
        pending.records -= 1
        if candidate.reason is None:
            pending.documents -= 1
            pending.truncated -= int(candidate.truncated)
        else:
            pending.skipped[candidate.reason] -= 1
    pending.skipped = +pending.skipped
    return pending.to_dict()


# Parent side.

class ChildWorker:
    """One child process, reused for file after file until it dies or is killed.

    The child is a fresh interpreter (`python -m pipeline.isolate`), not a fork: a fork of a
    Ray worker copies its threads' locks, and multiprocessing's spawn and forkserver re-run
    the parent's `__main__` script in the child. Jobs and batches travel over two pipes; the
    progress array lives in a 32-byte file that both processes map.
    """

    def __init__(self):
        self.progress_file = tempfile.TemporaryFile()
        self.progress_file.truncate(8 * 4)
        self.progress_map = mmap.mmap(self.progress_file.fileno(), 8 * 4)
        self.progress = memoryview(self.progress_map).cast("q")
        job_read, job_write = os.pipe()
        result_read, result_write = os.pipe()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(path for path in sys.path if path))
        fds = (job_read, result_write, self.progress_file.fileno())
        self.process = subprocess.Popen([sys.executable, "-m", "pipeline.isolate", *map(str, fds)], pass_fds=fds, env=env)
        os.close(job_read)
        os.close(result_write)
        self.sender = Connection(job_write, readable=False)
        self.connection = Connection(result_read, writable=False)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.process.kill()
        self.process.wait(timeout=30)
        self.sender.close()
        self.connection.close()
        self.progress.release()
        self.progress_map.close()
        self.progress_file.close()

    def run(self, job: tuple, timeout_s: float, on_message) -> tuple[str, str]:
        """Send `job` and pass each message to `on_message`; return ("done" | "died" | "timed_out", detail)."""
        self.sender.send(job)
        self.crash_detail = ""
        started = False
        last_state: tuple = ()
        last_change = time.monotonic()
        while True:
            if self.connection.poll(POLL_S):
                try:
                    message = self.connection.recv()
                except (EOFError, OSError):
                    return self.died(started)
                last_change = time.monotonic()
                if message[0] == "started":
                    started = True
                    continue
                if message[0] == "error":
                    raise WorkerError(f"processing {job[0]} failed in the child process:\n{message[1]}")
                if message[0] == "crashed":
                    self.crash_detail = message[1]
                    continue
                on_message(message)
                if message[0] == "done":
                    return "done", ""
                continue
            if not self.alive():
                while self.connection.poll(0):
                    try:
                        on_message(self.connection.recv())
                    except (EOFError, OSError):
                        break
                return self.died(started)
            state = tuple(self.progress)
            limit = timeout_s if started else STARTUP_TIMEOUT_S
            if state != last_state:
                last_state, last_change = state, time.monotonic()
            elif time.monotonic() - last_change > limit:
                self.process.kill()
                self.process.wait(timeout=30)
                if not started:
                    raise WorkerError(f"the child process for {job[0]} did not start within {limit} s")
                return "timed_out", f"timed out after {timeout_s} s"

    def died(self, started: bool) -> tuple[str, str]:
        code = self.process.wait(timeout=30)
        if code < 0:
            detail = f"worker died with {signal.Signals(-code).name}"
        else:
            detail = f"worker exited with status {code}"
        if not started:
            raise WorkerError(f"the child process failed before reading: {detail}")
        return "died", self.crash_detail or detail


_worker: ChildWorker | None = None


def get_worker() -> ChildWorker:
    """Return this process's child worker, starting a new one when there is none or it died."""
    global _worker
    if _worker is None or not _worker.alive():
        if _worker is not None:
            _worker.stop()
        _worker = ChildWorker()
    return _worker


def discard_worker() -> None:
    global _worker
    if _worker is not None:
        _worker.stop()
        _worker = None


class Recovery:
    """Resume points in one file after its child died, computed from the file's bytes."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.compressed = is_gzip(self.path)

    def after(self, job_start: ResumePoint, offset: int, ordinal: int) -> ResumePoint:
        """Return the point right after the record at `offset`, the `ordinal`-th record read since `job_start`."""
        with ArchiveBytes(self.path) as archive:
            if 0 <= offset < archive.size and archive.starts_record(offset, self.compressed):
                return ResumePoint(offset, 1)
        # Records inside one gzip member (or in an ARC file) cannot be sought to: read again
        # from where the job started and pass over the records already counted.
        return ResumePoint(job_start.offset, ordinal)

    def record_after(self, job_start: ResumePoint, offset: int) -> tuple[int, ResumePoint | None]:
        """Return (offset of the record a parser crash hit, resume point after it) when `offset` parsed last."""
        with ArchiveBytes(self.path) as archive:
            if offset < 0:
                failed = job_start.offset
            elif self.compressed:
                failed = archive.member_end(offset) or archive.size
            else:
                bounds = archive.record_bounds(offset)
                failed = archive.skip_separator(bounds[1]) if bounds else archive.size
            if failed >= archive.size:
                return failed, None
            resume = archive.next_start(failed + 1, self.compressed)
        return failed, None if resume is None else ResumePoint(resume, 0)


def process_isolated(path: str, config: dict[str, Any], specs: list, result) -> None:
    """Fill `result` (a `pipeline.process.FileResult`) by running the file in a child process."""
    from pipeline.process import BATCH_RECORDS

    read_config = config["read"]
    timeout_s = read_config.get("record_timeout_s", 60)
    max_restarts = read_config.get("max_worker_restarts", 20)
    recovery = Recovery(path)
    start, single_records, restarts = ResumePoint(), 0, 0

    while True:
        worker = get_worker()
        committed: dict[str, Any] = {}

        def on_message(message) -> None:
            if message[0] == "done":
                committed["final"] = message[1]
                return
            if message[0] == "reading":
                committed["pending"] = message[1]
                return
            committed.pop("pending", None)
            _, kept, rejected, stage_stats, read_seconds, read_bytes, read_stats, offset, ordinal = message
            result.add_batch(
                table_from_bytes(kept) if kept is not None else None,
                [table_from_bytes(table) for table in rejected],
                [StageStats.from_dict(stats) for stats in stage_stats],
                read_seconds,
                read_bytes,
            )
            committed.update(read=read_stats, offset=offset, ordinal=ordinal)

        job = (path, config, specs, start, single_records)
        try:
            outcome, detail = worker.run(job, timeout_s, on_message)
        except WorkerError:
            discard_worker()
            raise
        if outcome == "done":
            result.read_stats.add(ReadStats.from_dict(committed["final"]))
            return

        state = list(worker.progress)
        discard_worker()
        stage_crash = state[SINGLE] and state[PHASE] == STAGES and "pending" in committed
        counted = committed["pending"] if stage_crash else committed.get("read")
        if counted is not None:
            result.read_stats.add(ReadStats.from_dict(counted))
        restarts += 1
        log.warning("%s: %s (record offset %d); restart %d", path, detail, state[OFFSET], restarts)
        job_start = start
        if restarts > max_restarts:
            resume_offset = committed.get("offset", job_start.offset)
            result.read_stats.errors.append(f"gave up after {max_restarts} worker restarts at offset {resume_offset}")
            return

        if not state[SINGLE]:
            # A batch failed: read it again one record per batch to find the record at fault.
            if "offset" in committed:
                start = recovery.after(job_start, committed["offset"], committed["ordinal"])
            single_records = BATCH_RECORDS
            continue

        single_records = BATCH_RECORDS
        if stage_crash:
            result.read_stats.add_failed_record(state[OFFSET], detail)
            start = recovery.after(job_start, state[OFFSET], state[ORDINAL])
            continue
        # NOTE: records parsed after the last finished document and before a parser crash
        # are not counted, because the resumed read starts after the record that crashed.
        failed, resume = recovery.record_after(job_start, state[OFFSET])
        result.read_stats.add_failed_record(failed, f"{detail} while parsing")
        if resume is None:
            return
        start = resume


if __name__ == "__main__":
    serve(*(int(value) for value in sys.argv[1:4]))
