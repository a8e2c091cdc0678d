"""One input file through the per-document stages: read, extract, langid, rules, classifiers, PII.

`process_file` is what a Ray worker runs per file; it needs no Ray itself. Its outputs are
written under temporary names and renamed, then a `.done` marker is written last, so a
killed worker never leaves a file that a resume would trust.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import time
import unicodedata
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.readers.warc import Candidate, ReadStats, WarcReader
from pipeline.stages.base import Stage, StageStats, apply_stages, text_bytes, with_reason

log = logging.getLogger(__name__)

BATCH_RECORDS = 512

# Per-document stages in run order: (config section, module, class). A section that is
# absent from the config or has `enabled: false` is skipped.
STAGE_REGISTRY = [
    ("extract", "pipeline.stages.extract", "Extract"),
    ("langid", "pipeline.stages.langid", "LanguageId"),
    ("gopher_quality", "pipeline.stages.gopher", "GopherQuality"),
    ("gopher_repetition", "pipeline.stages.gopher", "GopherRepetition"),
    ("c4_quality", "pipeline.stages.c4", "C4Quality"),
    ("fineweb_quality", "pipeline.stages.fineweb", "FineWebQuality"),
    ("classifiers", "pipeline.stages.classifiers", "FastTextClassifiers"),
    ("pii", "pipeline.stages.pii", "PiiMask"),
]

CANDIDATE_SCHEMA = pa.schema([
    ("id", pa.string()),
    ("url", pa.string()),
    ("date", pa.string()),
    ("source", pa.string()),
    ("source_file", pa.string()),
    ("source_offset", pa.int64()),
    ("warc_truncated", pa.bool_()),
    ("http_charset", pa.string()),
    ("html", pa.binary()),
    ("text", pa.string()),
])


def active_stages(config: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Return the (section, module, class) entries of STAGE_REGISTRY that `config` enables."""
    active = []
    for section, module_name, class_name in STAGE_REGISTRY:
        options = config.get(section)
        if options and options.get("enabled", True):
            active.append((section, module_name, class_name))
    return active


def stage_class(module_name: str, class_name: str):
    return getattr(importlib.import_module(module_name), class_name)


def build_stages(config: dict[str, Any], specs: list[tuple[str, str, str]] | None = None) -> list[Stage]:
    stages = []
    for section, module_name, class_name in specs if specs is not None else active_stages(config):
        options = config[section]
        stages.append(stage_class(module_name, class_name)(**{key: value for key, value in options.items() if key != "enabled"}))
    return stages


def normalize_for_hash(text: str) -> str:
    """Lowercase, NFKC and collapse whitespace, so trivially different copies hash alike."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def text_hash(text: str) -> str:
    return hashlib.blake2b(normalize_for_hash(text).encode("utf-8"), digest_size=16).hexdigest()


def candidates_to_table(candidates: list[Candidate]) -> pa.Table:
    columns = {
        "id": [c.id for c in candidates],
        "url": [c.url for c in candidates],
        "date": [c.date for c in candidates],
        "source": [f"{c.source_file}:{c.source_offset}" for c in candidates],
        "source_file": [c.source_file for c in candidates],
        "source_offset": [c.source_offset for c in candidates],
        "warc_truncated": [c.truncated for c in candidates],
        "http_charset": [c.http_charset for c in candidates],
        "html": [c.html for c in candidates],
        "text": [c.text for c in candidates],
    }
    return pa.table(columns, schema=CANDIDATE_SCHEMA)


def batches(iterator: Iterator[Candidate], size: int) -> Iterator[list[Candidate]]:
    batch: list[Candidate] = []
    for candidate in iterator:
        batch.append(candidate)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, temporary, compression="zstd")
    os.replace(temporary, path)


def write_json_atomic(data: Any, path: Path) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=False), encoding="utf-8")
    os.replace(temporary, path)


def concat(tables: list[pa.Table]) -> pa.Table | None:
    tables = [table for table in tables if table.num_rows]
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="default")


class FileResult:
    """The outputs of one input file, gathered batch by batch (in order) from one or more runs."""

    def __init__(self, stage_names: list[str]):
        self.read_stats = ReadStats()
        self.read_stage = StageStats(stage="read")
        self.stage_stats = {name: StageStats(stage=name) for name in stage_names}
        self.kept_tables: list[pa.Table] = []
        self.rejected_tables: list[pa.Table] = []

    def add_batch(self, kept: pa.Table | None, rejected: list[pa.Table], stage_stats: list[StageStats],
                  read_seconds: float, read_bytes: int) -> None:
        if kept is not None and kept.num_rows:
            self.kept_tables.append(kept)
        self.rejected_tables.extend(table for table in rejected if table.num_rows)
        for stats in stage_stats:
            self.stage_stats[stats.stage].add(stats)
        self.read_stage.seconds += read_seconds
        self.read_stage.bytes_out += read_bytes


def process_batch(candidates: list[Candidate], stages: list[Stage]):
    """Run the stages over one batch; return (kept, rejected tables, stage stats, read bytes out)."""
    table = candidates_to_table(candidates)
    rejected_tables = []
    dropped_at_read = [c.reason for c in candidates if c.reason is not None]
    if dropped_at_read:
        mask = pa.array([c.reason is not None for c in candidates])
        rejected_tables.append(with_reason(table.filter(mask).drop_columns(["html"]), "read", dropped_at_read))
        table = table.filter(pa.array([c.reason is None for c in candidates]))
    read_bytes = sum(len(c.html or b"") + len((c.text or "").encode()) for c in candidates if c.reason is None)

    kept, rejected, batch_stats = apply_stages(stages, table)
    rejected_tables.extend(rejected)
    if kept.num_rows:
        kept = kept.append_column("text_hash", pa.array([text_hash(t) for t in kept.column("text").to_pylist()]))
    return kept, rejected_tables, batch_stats, read_bytes


def make_reader(read_config: dict[str, Any], progress=None) -> WarcReader:
    return WarcReader(
        content_types=read_config["content_types"],
        keep_wet_conversions=read_config["keep_wet_conversions"],
        max_body_bytes=read_config["max_body_bytes"],
        resync=read_config.get("resync", True),
        progress=progress,
    )


def process_file(path: str, key: str, config: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """Run the per-document stages over one archive; write `<key>.*` into `out_dir`; return its stats.

    With `read.isolate` (the default) the work runs in a child process, so that a crash or a
    stuck record in native code costs one record (`failed_records`) instead of the file.
    """
    start = time.perf_counter()
    specs = active_stages(config)
    # Stage names are class attributes, so the parent learns them without loading models.
    stage_names = [stage_class(module_name, class_name).name for _, module_name, class_name in specs]
    result = FileResult(stage_names)
    if config["read"].get("isolate", True):
        from pipeline.isolate import process_isolated

        process_isolated(path, config, specs, result)
    else:
        process_in_place(path, config, result)
    return write_outputs(path, key, out_dir, result, stage_names, time.perf_counter() - start)


def process_in_place(path: str, config: dict[str, Any], result: FileResult) -> None:
    reader = make_reader(config["read"])
    stages = build_stages(config)
    read_start = time.perf_counter()
    for candidates in batches(reader.read(path, result.read_stats), BATCH_RECORDS):
        read_seconds = time.perf_counter() - read_start
        kept, rejected, batch_stats, read_bytes = process_batch(candidates, stages)
        result.add_batch(kept, rejected, batch_stats, read_seconds, read_bytes)
        read_start = time.perf_counter()


def write_outputs(path: str, key: str, out_dir: str, result: FileResult, stage_names: list[str],
                  seconds: float) -> dict[str, Any]:
    out = Path(out_dir)
    read_stats = result.read_stats
    read_stage = result.read_stage
    read_stage.documents_in = read_stats.records
    read_stage.documents_out = read_stats.documents
    read_stage.dropped = dict(read_stats.skipped)

    # A file whose rows were all rejected writes no kept file (and the reverse), never an empty one.
    kept_table = concat(result.kept_tables)
    rejected_table = concat(result.rejected_tables)
    if kept_table is not None:
        write_parquet_atomic(kept_table, out / f"{key}.kept.parquet")
    if rejected_table is not None:
        if "html" in rejected_table.column_names:
            rejected_table = rejected_table.drop_columns(["html"])
        write_parquet_atomic(rejected_table, out / f"{key}.rejected.parquet")

    output = {
        "path": path,
        "key": key,
        "read": read_stats.to_dict(),
        "stages": [read_stage.to_dict()] + [result.stage_stats[name].to_dict() for name in stage_names],
        "documents_kept": kept_table.num_rows if kept_table is not None else 0,
        "bytes_kept": text_bytes(kept_table) if kept_table is not None else 0,
        "seconds": round(seconds, 4),
    }
    write_json_atomic(output, out / f"{key}.stats.json")
    (out / f"{key}.done").write_text("", encoding="utf-8")
    log.info("%s: %d records, %d documents kept in %.1f s", path, read_stats.records, output["documents_kept"], output["seconds"])
    return output
