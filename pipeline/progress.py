"""Progress of a long phase in the terminal: documents and bytes done, rates, ETA, one log line per input file.

Use from the driver process, around the loop that collects finished work:

    from pipeline.progress import Progress

    with Progress("process", total_bytes=sum(input_sizes), total_files=len(inputs)) as progress:
        for result in finished_files:                  # e.g. as Ray tasks complete
            progress.file_done(result.path, documents=result.documents, bytes_in=result.bytes_in,
                               seconds=result.seconds, errors=len(result.errors))
    logger.info("%s", progress.summary())

For finer updates, call `progress.advance(documents=n, bytes_in=b)` per batch and then
`file_done(..., counted=True)` so the file's counts are not added twice.

On a terminal, a tqdm bar shows bytes against `total_bytes` (else files against
`total_files`, else a plain count of documents) with the rate and ETA, plus documents and
documents/s. Log records are routed above the bar while it is open. When stderr is not a
terminal (CI, log files), the bar is off and a progress line is logged every `log_every_s`
seconds instead. `file_done` logs one INFO line per file either way.
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

logger = logging.getLogger(__name__)


def format_bytes(count: float) -> str:
    """Return a byte count with a binary unit, like `1.5 MiB`."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    """Return a duration like `45s`, `12m05s` or `3h02m`."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Counts documents, bytes and files of one phase and shows them as a bar or as periodic log lines."""

    def __init__(self, phase: str, total_bytes: int | None = None, total_files: int | None = None,
                 log_every_s: float = 30.0, enabled: bool | None = None, clock=time.monotonic):
        """`enabled` forces the bar on or off; None shows it only when stderr is a terminal."""
        self.phase = phase
        self.total_bytes = total_bytes
        self.total_files = total_files
        self.log_every_s = log_every_s
        self.documents = 0
        self.bytes_in = 0
        self.files_done = 0
        self.errors = 0
        self.clock = clock
        self.started = clock()
        self.last_log = self.started
        self.show_bar = sys.stderr.isatty() if enabled is None else enabled
        self.bar: tqdm | None = None
        self.exit_stack = ExitStack()

    def __enter__(self) -> "Progress":
        if self.show_bar:
            self.exit_stack.enter_context(logging_redirect_tqdm())
            self.bar = self.exit_stack.enter_context(self.make_bar())
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def make_bar(self) -> tqdm:
        if self.total_bytes is not None:
            return tqdm(desc=self.phase, total=self.total_bytes, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr)
        if self.total_files is not None:
            return tqdm(desc=self.phase, total=self.total_files, unit="file", file=sys.stderr)
        return tqdm(desc=self.phase, unit="doc", file=sys.stderr)

    @property
    def elapsed_s(self) -> float:
        return self.clock() - self.started

    def advance(self, documents: int = 0, bytes_in: int = 0) -> None:
        """Add documents and input bytes processed since the last call."""
        self.documents += documents
        self.bytes_in += bytes_in
        if self.bar is not None:
            if self.total_bytes is not None:
                self.bar.update(bytes_in)
            elif self.total_files is None:
                self.bar.update(documents)
            self.bar.set_postfix_str(self.postfix(), refresh=False)
        self.maybe_log()

    def file_done(self, path: str | Path, documents: int, bytes_in: int, seconds: float, errors: int = 0,
                  counted: bool = False) -> None:
        """Record one finished input file and log a line for it; `counted` means advance() already added its counts."""
        if not counted:
            self.advance(documents=documents, bytes_in=bytes_in)
        self.files_done += 1
        self.errors += errors
        if self.bar is not None and self.total_bytes is None and self.total_files is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(self.postfix(), refresh=False)
        of_total = f"/{self.total_files}" if self.total_files is not None else ""
        error_note = f", {errors} read errors" if errors else ""
        logger.info("%s: file %d%s done: %s: %s documents, %s in %.1f s%s", self.phase, self.files_done, of_total, path,
                    f"{documents:,}", format_bytes(bytes_in), seconds, error_note)

    def postfix(self) -> str:
        rate = self.documents / max(self.elapsed_s, 1e-9)
        files = f", files {self.files_done}/{self.total_files}" if self.total_files is not None and self.total_bytes is not None else ""
        return f"{self.documents:,} docs, {rate:,.0f} docs/s{files}"

    def eta_s(self) -> float | None:
        """Return the estimated seconds left from the byte rate (else the file rate), or None when unknown."""
        elapsed = self.elapsed_s
        if self.total_bytes and self.bytes_in > 0:
            return elapsed * (self.total_bytes - self.bytes_in) / self.bytes_in
        if self.total_files and self.files_done > 0:
            return elapsed * (self.total_files - self.files_done) / self.files_done
        return None

    def status_line(self) -> str:
        elapsed = max(self.elapsed_s, 1e-9)
        parts = [f"{self.phase}: {self.documents:,} documents ({self.documents / elapsed:,.0f}/s)",
                 f"{format_bytes(self.bytes_in)}" + (f" of {format_bytes(self.total_bytes)}" if self.total_bytes else "")
                 + f" ({format_bytes(self.bytes_in / elapsed)}/s)"]
        if self.total_files is not None:
            parts.append(f"files {self.files_done}/{self.total_files}")
        eta = self.eta_s()
        if eta is not None:
            parts.append(f"ETA {format_duration(eta)}")
        return ", ".join(parts)

    def maybe_log(self) -> None:
        """Log the status line when the bar is off and `log_every_s` has passed since the last one."""
        if self.bar is not None or self.clock() - self.last_log < self.log_every_s:
            return
        self.last_log = self.clock()
        logger.info("%s", self.status_line())

    def summary(self) -> str:
        """Return one line with the totals and mean rates of the phase."""
        elapsed = max(self.elapsed_s, 1e-9)
        errors = f", {self.errors} read errors" if self.errors else ""
        return (f"{self.phase}: {self.files_done} files, {self.documents:,} documents, {format_bytes(self.bytes_in)} "
                f"in {format_duration(elapsed)} ({self.documents / elapsed:,.0f} documents/s, "
                f"{format_bytes(self.bytes_in / elapsed)}/s){errors}")

    def close(self) -> None:
        """Close the bar and stop routing log records through it; safe to call twice."""
        self.exit_stack.close()
        self.bar = None
