"""The stage contract and the loop that applies stages to a batch and counts the drops.

A stage tags first and filters second: it returns the batch with its score columns added
and one drop reason per row (None keeps the row). `apply_stages` splits the rows, appends
`stage` and `reason` to the rejected ones, and counts documents, bytes and seconds per stage.
No stage imports Ray.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc


@dataclass
class StageOutput:
    table: pa.Table                 # the input rows in the same order, with new columns
    reasons: list[str | None]       # one per row; None keeps the row


class Stage(Protocol):
    name: str

    def __call__(self, table: pa.Table) -> StageOutput: ...


@dataclass
class StageStats:
    """Counts for one stage, summed over batches and files."""

    stage: str
    documents_in: int = 0
    documents_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, other: "StageStats") -> None:
        self.documents_in += other.documents_in
        self.documents_out += other.documents_out
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out
        self.seconds += other.seconds
        for reason, count in other.dropped.items():
            self.dropped[reason] = self.dropped.get(reason, 0) + count

    def to_dict(self) -> dict:
        return {
            "stage": self.stage,
            "documents_in": self.documents_in,
            "documents_out": self.documents_out,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "dropped": dict(sorted(self.dropped.items())),
            "seconds": round(self.seconds, 4),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "StageStats":
        return cls(
            stage=data["stage"],
            documents_in=data["documents_in"],
            documents_out=data["documents_out"],
            bytes_in=data["bytes_in"],
            bytes_out=data["bytes_out"],
            dropped=dict(data["dropped"]),
            seconds=data["seconds"],
        )


def text_bytes(table: pa.Table) -> int:
    """UTF-8 bytes of `text`, plus the raw `html` bytes of rows not yet extracted."""
    total = 0
    for name in ("text", "html"):
        if table.num_rows and name in table.column_names:
            lengths = pc.binary_length(table.column(name).cast(pa.binary()))
            total += int(pc.sum(lengths).as_py() or 0)
    return total


def with_reason(table: pa.Table, stage: str, reasons: list[str]) -> pa.Table:
    table = table.append_column("stage", pa.array([stage] * table.num_rows, pa.string()))
    return table.append_column("reason", pa.array(reasons, pa.string()))


def apply_stage(stage: Stage, table: pa.Table) -> tuple[pa.Table, pa.Table | None, StageStats]:
    """Run one stage; return the kept rows, the rejected rows (or None) and the counts."""
    stats = StageStats(stage=stage.name, documents_in=table.num_rows, bytes_in=text_bytes(table))
    start = time.perf_counter()
    output = stage(table)
    stats.seconds = time.perf_counter() - start
    if len(output.reasons) != output.table.num_rows:
        raise RuntimeError(f"stage {stage.name} returned {len(output.reasons)} reasons for {output.table.num_rows} rows")

    keep_mask = pa.array([reason is None for reason in output.reasons], pa.bool_())
    kept = output.table.filter(keep_mask)
    rejected = None
    if kept.num_rows < output.table.num_rows:
        dropped_reasons = [reason for reason in output.reasons if reason is not None]
        rejected = with_reason(output.table.filter(pc.invert(keep_mask)), stage.name, dropped_reasons)
        for reason in dropped_reasons:
            stats.dropped[reason] = stats.dropped.get(reason, 0) + 1

    stats.documents_out = kept.num_rows
    stats.bytes_out = text_bytes(kept)
    return kept, rejected, stats


def apply_stages(stages: list[Stage], table: pa.Table) -> tuple[pa.Table, list[pa.Table], list[StageStats]]:
    """Run `stages` in order on one batch; return kept rows, rejected batches and per-stage counts."""
    rejected: list[pa.Table] = []
    all_stats: list[StageStats] = []
    for stage in stages:
        table, dropped, stats = apply_stage(stage, table)
        all_stats.append(stats)
        if dropped is not None:
            rejected.append(dropped)
    return table, rejected, all_stats
