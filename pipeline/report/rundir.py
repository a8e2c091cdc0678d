"""Read a run directory: stats.json, config.yaml, tokens/manifest.json and the Parquet outputs.

Every reader accepts a missing part and returns an empty value, so the report and `inspect`
work on a run that stopped early, has no rejected rows or has not been tokenized.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

logger = logging.getLogger(__name__)

KEPT = "documents"
REJECTED = "rejected"

# Matches an absolute URL; the group `host` is its host without user info or port.
HOST_PATTERN = r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/@?#]*@)?(?P<host>[^/:?#]+)"

RowFilter = Callable[[pa.Table], np.ndarray]


def read_json(path: Path) -> dict | None:
    """Return the parsed JSON object at `path`, or None when it is missing or invalid."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        logger.warning("cannot read %s: %s", path, error)
        return None
    return data if isinstance(data, dict) else None


def load_stats(run_dir: Path) -> dict:
    """Return stats.json with the sections `run`, `stages`, `files` and `tokens` always present."""
    stats = read_json(Path(run_dir) / "stats.json") or {}
    return {
        "run": stats.get("run") or {},
        "stages": stats.get("stages") or [],
        "files": stats.get("files") or {},
        "tokens": stats.get("tokens") or {},
    }


def load_run_config(run_dir: Path) -> dict | None:
    """Return the config.yaml the run used, or None when the run directory has none."""
    path = Path(run_dir) / "config.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, yaml.YAMLError) as error:
        logger.warning("cannot read %s: %s", path, error)
        return None
    return data if isinstance(data, dict) else None


def load_manifest(run_dir: Path) -> dict | None:
    return read_json(Path(run_dir) / "tokens" / "manifest.json")


def parquet_files(run_dir: Path, kind: str) -> list[Path]:
    """Return the Parquet files of `kind` (KEPT or REJECTED), sorted by name."""
    return sorted((Path(run_dir) / kind).glob("*.parquet"))


def numeric_columns(files: Iterable[Path]) -> list[str]:
    """Return the names of integer and floating-point columns in any of `files`, in first-seen order."""
    names: dict[str, None] = {}
    for path in files:
        for field in pq.read_schema(path):
            if pa.types.is_integer(field.type) or pa.types.is_floating(field.type):
                names.setdefault(field.name, None)
    return list(names)


def total_rows(files: Iterable[Path]) -> int:
    return sum(pq.ParquetFile(path).metadata.num_rows for path in files)


def numeric_values(files: list[Path], columns: list[str], max_rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Return the non-null values of each column as float64, from at most about `max_rows` rows.

    When the files hold more rows, each file contributes a seeded random share of its rows,
    so memory stays bounded by `max_rows` plus one file's columns.
    """
    rng = np.random.default_rng(seed)
    fraction = min(1.0, max_rows / max(1, total_rows(files)))
    parts: dict[str, list[np.ndarray]] = {column: [] for column in columns}
    for path in files:
        present = [name for name in pq.read_schema(path).names if name in parts]
        if not present:
            continue
        table = pq.read_table(path, columns=present)
        if fraction < 1.0:
            keep = np.flatnonzero(rng.random(table.num_rows) < fraction)
            table = table.take(pa.array(keep, pa.int64()))
        for name in present:
            column = table.column(name).drop_null().cast(pa.float64())
            values = column.to_numpy()
            parts[name].append(values[np.isfinite(values)])
    return {name: np.concatenate(chunks) if chunks else np.empty(0) for name, chunks in parts.items()}


def value_counts(files: Iterable[Path], column: str, transform: Callable[[pa.ChunkedArray], pa.ChunkedArray] | None = None) -> Counter:
    """Count the non-null values of `column` over `files`, after `transform` when given."""
    counts: Counter = Counter()
    for path in files:
        if column not in pq.read_schema(path).names:
            continue
        values = pq.read_table(path, columns=[column]).column(column)
        if transform is not None:
            values = transform(values)
        for item in pc.value_counts(values.drop_null()).to_pylist():
            counts[item["values"]] += item["counts"]
    return counts


def url_hosts(urls: pa.ChunkedArray) -> pa.ChunkedArray:
    """Return the lowercase host of each URL; null where a value is not an absolute URL."""
    hosts = pc.extract_regex(urls.cast(pa.string()), HOST_PATTERN)
    return pc.utf8_lower(pc.struct_field(hosts, "host"))


def url_matcher(pattern: str) -> re.Pattern:
    """Compile a --url pattern as a regular expression; one that is not valid matches as a substring."""
    try:
        return re.compile(pattern)
    except re.error:
        return re.compile(re.escape(pattern))


def sample_rows(
    files: list[Path],
    n: int,
    seed: int,
    where: RowFilter | None = None,
    filter_columns: tuple[str, ...] = (),
    group_by: str | None = None,
) -> dict[str, list[dict]]:
    """Pick up to `n` rows per group at random (seeded) and return them as dicts, grouped.

    Rows are chosen by reading only `filter_columns` and `group_by`. The other columns, text
    included, are read only from the row groups that contain a chosen row. `where` takes a table
    of those columns and returns a boolean mask. Files that lack a filter column are skipped.
    A row dict has the file's columns plus `_file`, the Parquet file it came from.
    """
    candidates: dict[str, list[tuple[int, np.ndarray]]] = {}
    needed = [*filter_columns, *([group_by] if group_by else [])]
    for file_index, path in enumerate(files):
        schema_names = pq.read_schema(path).names
        if any(name not in schema_names for name in needed):
            continue
        table = pq.read_table(path, columns=needed) if needed else pa.table({"_": pa.nulls(pq.ParquetFile(path).metadata.num_rows)})
        mask = np.ones(table.num_rows, dtype=bool) if where is None else np.asarray(where(table), dtype=bool)
        if group_by is None:
            candidates.setdefault("", []).append((file_index, np.flatnonzero(mask)))
            continue
        groups = np.asarray(table.column(group_by).to_pylist(), dtype=object)
        for group in set(groups[mask].tolist()):
            rows = np.flatnonzero(mask & (groups == group))
            candidates.setdefault(str(group), []).append((file_index, rows))

    rng = np.random.default_rng(seed)
    picked: dict[str, list[dict]] = {}
    for group in sorted(candidates):
        chosen = choose(candidates[group], n, rng)
        picked[group] = [row for file_index, rows in chosen for row in read_rows(files[file_index], rows)]
    return picked


def choose(candidates: list[tuple[int, np.ndarray]], n: int, rng: np.random.Generator) -> list[tuple[int, np.ndarray]]:
    """Pick `n` of the candidate rows uniformly; return them per file, in file and row order."""
    sizes = np.array([len(rows) for _, rows in candidates], dtype=np.int64)
    total = int(sizes.sum())
    if total == 0:
        return []
    flat = np.sort(rng.choice(total, size=min(n, total), replace=False))
    starts = np.concatenate([[0], np.cumsum(sizes)])
    chosen = []
    for position, (file_index, rows) in enumerate(candidates):
        inside = flat[(flat >= starts[position]) & (flat < starts[position + 1])] - starts[position]
        if len(inside):
            chosen.append((file_index, rows[inside]))
    return chosen


def read_rows(path: Path, rows: np.ndarray) -> list[dict]:
    """Read the rows at the given positions of one Parquet file, loading only their row groups."""
    parquet = pq.ParquetFile(path)
    bounds = np.cumsum([0] + [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)])
    result = []
    for group in np.unique(np.searchsorted(bounds, rows, side="right") - 1):
        inside = rows[(rows >= bounds[group]) & (rows < bounds[group + 1])] - bounds[group]
        table = parquet.read_row_group(int(group)).take(pa.array(inside, pa.int64()))
        for row in table.to_pylist():
            row["_file"] = path
            result.append(row)
    return result
