"""Exact line deduplication: remove lines that recur across documents of the whole run.

A line is compared after normalization (lowercase, accents and punctuation removed,
digits each set to 0, whitespace collapsed), as cc_net does, so "Posted on 13 May" and
"Posted on 28 May" are the same line. `line_dedup` counts, for every normalized line, the
documents that contain it. The `LineDedup` stage it returns removes the lines found in
more than `max_line_count` documents from every document. Blank lines and lines
made only of punctuation are never counted or removed.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray

from pipeline.dedup.components import as_returns
from pipeline.dedup.shingles import EMPTY_STRING_HASH, hash_strings, normalize_text, unique_per_text
from pipeline.dedup.shuffle import WorkUnit, column, concat_columns, plan_units, split_by_partition, submit_all
from pipeline.stages.base import StageOutput

logger = logging.getLogger(__name__)

LINE_HASHES_FILE = "line_hashes.npy"
TOO_SHORT = "line_dedup_too_short"
DEFAULTS: dict[str, Any] = {
    "enabled": False,
    "max_line_count": 1,
    "min_words_after": 50,
    "num_partitions": 16,
    "rows_per_task": 20000,
    "batch_rows": 2000,
    "concurrency": None,
}


def split_lines(texts: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """Split texts on "\\n"; return all lines back to back and per-text line offsets (int64)."""
    lists = pc.split_pattern(pc.fill_null(texts, ""), "\n")
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    counts = pc.list_value_length(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    return lists.flatten(), np.r_[0, np.cumsum(counts)].astype(np.int64)


def hash_lines(lines: pa.Array) -> np.ndarray:
    """Hash normalized lines to uint64; blank lines get EMPTY_STRING_HASH."""
    normalized = normalize_text(lines, digits_to_zero=True)
    normalized = pc.utf8_trim_whitespace(pc.replace_substring_regex(normalized, r"\s+", " "))
    return hash_strings(normalized)


def resolve_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """Overlay `config` on DEFAULTS; raise ValueError naming an unknown or invalid key."""
    settings = dict(DEFAULTS)
    for key, value in (config or {}).items():
        if key not in DEFAULTS:
            raise ValueError(f"unknown dedup.lines key '{key}'; known keys: {', '.join(DEFAULTS)}")
        if value is not None or key == "concurrency":
            settings[key] = value
    for key in ("max_line_count", "num_partitions", "rows_per_task", "batch_rows"):
        if int(settings[key]) < 1:
            raise ValueError(f"dedup.lines.{key} must be at least 1, got {settings[key]!r}")
    return settings


@ray.remote
def count_unit_lines(unit: WorkUnit, settings: dict[str, Any], excluded_ids: pa.Array):
    """Count, per normalized line hash, the documents of this unit that contain the line.

    Documents whose id is in `excluded_ids` (near-duplicates that will be dropped) are not
    counted. Returns (hash, documents) columns partitioned by hash.
    """
    hashes = []
    for batch in unit.read_batches(["id", "text"], settings["batch_rows"]):
        kept = pc.invert(pc.is_in(batch.column("id"), value_set=excluded_ids))
        lines, offsets = split_lines(batch.column("text").filter(kept))
        distinct, _ = unique_per_text(hash_lines(lines), offsets)  # each line once per document
        hashes.append(distinct[distinct != EMPTY_STRING_HASH])

    values, documents = np.unique(np.concatenate(hashes + [np.zeros(0, np.uint64)]), return_counts=True)
    return as_returns(split_by_partition(values, {"hash": values, "documents": documents}, settings["num_partitions"]))


@ray.remote
def frequent_lines(max_line_count: int, *pieces: dict[str, np.ndarray]) -> np.ndarray:
    """Sum the per-unit counts of one partition; return the sorted hashes above the limit."""
    merged = concat_columns(pieces, ("hash", "documents"), (np.uint64, np.int64))
    order = np.argsort(merged["hash"], kind="stable")
    values, documents = merged["hash"][order], merged["documents"][order]
    if values.size == 0:
        return values
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    totals = np.add.reduceat(documents, starts)
    return values[starts][totals > max_line_count]


class LineDedup:
    """Stage that removes frequent lines and drops documents left too short.

    `text` is replaced by the text without the frequent lines (kept lines and their order
    unchanged, joined by "\\n"), and `line_dedup_lines_removed` (int32) is appended. A
    document that lost at least one line and has fewer than `min_words_after`
    whitespace-separated words left gets the reason `line_dedup_too_short`. The stage
    pickles as the path of its hash file, so it can be shipped to Ray workers.
    """

    name = "line_dedup"

    def __init__(self, hashes_path: str, min_words_after: int = 50):
        self.hashes_path = hashes_path
        self.min_words_after = min_words_after
        self._hashes: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"hashes_path": self.hashes_path, "min_words_after": self.min_words_after, "_hashes": None}

    @property
    def hashes(self) -> np.ndarray:
        """The sorted uint64 hashes of the frequent lines, loaded on first use."""
        if self._hashes is None:
            self._hashes = np.load(self.hashes_path)
        return self._hashes

    def __call__(self, table: pa.Table) -> StageOutput:
        lines, offsets = split_lines(table.column("text"))
        line_hashes = hash_lines(lines)
        frequent = np.zeros(line_hashes.size, dtype=bool)
        if self.hashes.size:
            position = np.minimum(np.searchsorted(self.hashes, line_hashes), self.hashes.size - 1)
            frequent = (self.hashes[position] == line_hashes) & (line_hashes != EMPTY_STRING_HASH)

        text_of_line = np.repeat(np.arange(table.num_rows), np.diff(offsets))
        removed = np.bincount(text_of_line[frequent], minlength=table.num_rows)
        kept_offsets = np.r_[0, np.cumsum(np.diff(offsets) - removed)].astype(np.int32)
        kept_lines = pa.ListArray.from_arrays(pa.array(kept_offsets), lines.filter(pa.array(~frequent)))
        new_text = pc.if_else(pa.array(removed > 0), pc.binary_join(kept_lines, "\n"), table.column("text"))

        words_after = pc.count_substring_regex(pc.fill_null(new_text, ""), r"\S+").to_numpy(zero_copy_only=False)
        too_short = (removed > 0) & (words_after < self.min_words_after)
        reasons = [TOO_SHORT if short else None for short in too_short]
        table = table.set_column(table.schema.get_field_index("text"), "text", new_text)
        table = table.append_column("line_dedup_lines_removed", pa.array(removed.astype(np.int32)))
        return StageOutput(table=table, reasons=reasons)


def line_dedup(
    parts: list[str], config: dict[str, Any], work_dir: str, near_duplicates: pa.Table | None = None
) -> LineDedup | None:
    """Count lines across `parts` and return the LineDedup stage, or None when disabled.

    `near_duplicates` is near_dedup's result: its rows with `duplicate` true are left out
    of the counts, so a survivor does not lose the lines it shares with its own dropped
    copies. The frequent line hashes go to work_dir/line_hashes.npy (written atomically).
    """
    settings = resolve_config(config)
    if not settings["enabled"]:
        return None
    if not ray.is_initialized():
        raise RuntimeError("line_dedup runs on an initialized Ray; call ray.init() first")
    os.makedirs(work_dir, exist_ok=True)

    excluded = pa.array([], pa.string())
    if near_duplicates is not None:
        excluded = near_duplicates.filter(near_duplicates.column("duplicate")).column("id").combine_chunks()
    excluded_ref = ray.put(excluded)
    num_partitions, in_flight = settings["num_partitions"], settings["concurrency"]
    units = plan_units(parts, settings["rows_per_task"])

    counted = submit_all(count_unit_lines, [(unit, settings, excluded_ref) for unit in units], num_partitions, in_flight)
    reduced = submit_all(
        frequent_lines, [(settings["max_line_count"], *column(counted, k)) for k in range(num_partitions)], 1, in_flight
    )
    hashes = np.sort(np.concatenate([ray.get(refs[0]) for refs in reduced] + [np.zeros(0, np.uint64)]))

    path = os.path.join(work_dir, LINE_HASHES_FILE)
    temporary = path + ".tmp.npy"
    np.save(temporary, hashes)
    os.replace(temporary, path)
    logger.info("line dedup: %d lines occur in more than %d documents", hashes.size, settings["max_line_count"])
    return LineDedup(path, settings["min_words_after"])
