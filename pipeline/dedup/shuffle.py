"""Work units over Parquet parts, document node ids, and hash-partitioned shuffles on Ray tasks.

A work unit is a run of row groups of one part. A document's node id is the int64
(part_index << 32) | row, so any task can tell which unit contains a node. A shuffle is a
map task with `num_returns=num_partitions` (one object per partition) and reduce tasks
that take the k-th object of every map task; Ray's object store carries the data and
spills it to disk when it does not fit in memory.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray

from pipeline.dedup.shingles import fmix64

logger = logging.getLogger(__name__)

ROW_BITS = 32
ROW_MASK = (1 << ROW_BITS) - 1


@dataclass(frozen=True)
class WorkUnit:
    """Consecutive row groups of one Parquet part, processed by one task."""

    index: int
    path: str
    part_index: int
    row_groups: tuple[int, ...]
    first_row: int
    num_rows: int

    @property
    def first_node(self) -> int:
        return (self.part_index << ROW_BITS) | self.first_row

    def read_batches(self, columns: list[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
        """Yield the unit's rows in order, `batch_rows` at a time."""
        parquet = pq.ParquetFile(self.path)
        yield from parquet.iter_batches(batch_size=batch_rows, row_groups=list(self.row_groups), columns=columns)

    def read_rows(self, rows: np.ndarray, columns: list[str]) -> pa.Table:
        """Read the given rows (offsets from `first_row`, ascending) of the unit."""
        table = pq.ParquetFile(self.path).read_row_groups(list(self.row_groups), columns=columns)
        return table.take(pa.array(rows, pa.int64()))


def plan_units(parts: Sequence[str], rows_per_unit: int) -> list[WorkUnit]:
    """Split parts into units of whole row groups holding about `rows_per_unit` rows each.

    Only Parquet footers are read. A row group larger than `rows_per_unit` is one unit.
    """
    if len(parts) >= 1 << 31:
        raise ValueError(f"{len(parts)} parts exceed the node id's 31-bit part index")
    units: list[WorkUnit] = []
    for part_index, path in enumerate(parts):
        metadata = pq.ParquetFile(path).metadata
        if metadata.num_rows > ROW_MASK:
            raise ValueError(f"part {path} has {metadata.num_rows} rows; the node id allows at most {ROW_MASK}")
        groups: list[int] = []
        first_row = row = 0
        for group in range(metadata.num_row_groups):
            groups.append(group)
            row += metadata.row_group(group).num_rows
            if row - first_row >= rows_per_unit or group == metadata.num_row_groups - 1:
                units.append(WorkUnit(len(units), str(path), part_index, tuple(groups), first_row, row - first_row))
                groups, first_row = [], row
    return units


def node_ids(unit: WorkUnit, start: int, count: int) -> np.ndarray:
    """Return the node ids of `count` rows of `unit` starting at row offset `start`."""
    return np.int64(unit.first_node + start) + np.arange(count, dtype=np.int64)


def partition_of(values: np.ndarray, num_partitions: int) -> np.ndarray:
    """Assign each int64 or uint64 value to a partition by a mixed hash."""
    mixed = fmix64(values.astype(np.uint64, copy=False))
    return (mixed % np.uint64(num_partitions)).astype(np.int64)


def split_by_partition(key: np.ndarray, columns: dict[str, np.ndarray], num_partitions: int) -> list[dict[str, np.ndarray]]:
    """Split columns into `num_partitions` dicts by the hash of `key` (order within a partition kept)."""
    partition = partition_of(key, num_partitions)
    order = np.argsort(partition, kind="stable")
    bounds = np.searchsorted(partition[order], np.arange(num_partitions + 1))
    return [
        {name: values[order[bounds[k] : bounds[k + 1]]] for name, values in columns.items()}
        for k in range(num_partitions)
    ]


def concat_columns(pieces: Sequence[dict[str, np.ndarray]], names: Sequence[str], dtypes: Sequence[Any]) -> dict[str, np.ndarray]:
    """Concatenate dicts of arrays column by column; missing pieces give empty columns."""
    return {
        name: np.concatenate([piece[name] for piece in pieces] + [np.zeros(0, dtype)])
        for name, dtype in zip(names, dtypes)
    }


def submit_all(task: Callable, argument_lists: Sequence[tuple], num_returns: int, max_in_flight: int | None) -> list[list[ray.ObjectRef]]:
    """Submit one task per argument tuple, with at most `max_in_flight` running at once.

    Returns each task's list of `num_returns` object refs, in submission order, once every
    task has finished (a step barrier). Arguments that are object refs reach the task as
    their values.
    """
    results: list[list[ray.ObjectRef]] = []
    pending: list[ray.ObjectRef] = []
    for arguments in argument_lists:
        if max_in_flight and len(pending) >= max_in_flight:
            _, pending = ray.wait(pending, num_returns=len(pending) - max_in_flight + 1, fetch_local=False)
        refs = task.options(num_returns=num_returns).remote(*arguments)
        refs = list(refs) if num_returns > 1 else [refs]
        results.append(refs)
        pending.append(refs[-1])
    if pending:
        ray.wait(pending, num_returns=len(pending), fetch_local=False)
    return results


def column(results: list[list[ray.ObjectRef]], index: int) -> list[ray.ObjectRef]:
    """Return the `index`-th returned object of every task: one partition of a shuffle."""
    return [refs[index] for refs in results]
