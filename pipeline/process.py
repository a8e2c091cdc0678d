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


def build_stages(config: dict[str, Any]) -> list[Stage]:
    stages = []
    for section, module_name, class_name in STAGE_REGISTRY:
        options = config.get(section)
        if not options or not options.get("enabled", True):
            continue
        module = importlib.import_module(module_name)
        stage_class = getattr(module, class_name)
        stages.append(stage_class(**{key: value for key, value in options.items() if key != "enabled"}))
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


def process_file(path: str, key: str, config: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """Run the per-document stages over one archive; write `<key>.*` into `out_dir`; return its stats."""
    start = time.perf_counter()
    out = Path(out_dir)
    read_config = config["read"]
    reader = WarcReader(
        content_types=read_config["content_types"],
        keep_wet_conversions=read_config["keep_wet_conversions"],
        max_body_bytes=read_config["max_body_bytes"],
    )
    stages = build_stages(config)
    read_stats = ReadStats()
    read_stage = StageStats(stage="read")
    stage_stats = {stage.name: StageStats(stage=stage.name) for stage in stages}
    kept_tables: list[pa.Table] = []
    rejected_tables: list[pa.Table] = []

    read_start = time.perf_counter()
    for candidates in batches(reader.read(path, read_stats), BATCH_RECORDS):
        table = candidates_to_table(candidates)
        read_stage.seconds += time.perf_counter() - read_start
        dropped_at_read = [c.reason for c in candidates if c.reason is not None]
        if dropped_at_read:
            mask = pa.array([c.reason is not None for c in candidates])
            rejected = with_reason(table.filter(mask).drop_columns(["html"]), "read", dropped_at_read)
            rejected_tables.append(rejected)
            table = table.filter(pa.array([c.reason is None for c in candidates]))
        read_stage.bytes_out += sum(len(c.html or b"") + len((c.text or "").encode()) for c in candidates if c.reason is None)

        kept, rejected, batch_stats = apply_stages(stages, table)
        for stats in batch_stats:
            stage_stats[stats.stage].add(stats)
        rejected_tables.extend(rejected)
        if kept.num_rows:
            kept = kept.append_column("text_hash", pa.array([text_hash(t) for t in kept.column("text").to_pylist()]))
            kept_tables.append(kept)
        read_start = time.perf_counter()

    read_stage.documents_in = read_stats.records
    read_stage.documents_out = read_stats.documents
    read_stage.dropped = dict(read_stats.skipped)

    kept_table = concat(kept_tables)
    rejected_table = concat(rejected_tables)
    if kept_table is not None:
        write_parquet_atomic(kept_table, out / f"{key}.kept.parquet")
    if rejected_table is not None:
        if "html" in rejected_table.column_names:
            rejected_table = rejected_table.drop_columns(["html"])
        write_parquet_atomic(rejected_table, out / f"{key}.rejected.parquet")

    result = {
        "path": path,
        "key": key,
        "read": read_stats.to_dict(),
        "stages": [read_stage.to_dict()] + [stage_stats[stage.name].to_dict() for stage in stages],
        "documents_kept": kept_table.num_rows if kept_table is not None else 0,
        "bytes_kept": text_bytes(kept_table) if kept_table is not None else 0,
        "seconds": round(time.perf_counter() - start, 4),
    }
    write_json_atomic(result, out / f"{key}.stats.json")
    (out / f"{key}.done").write_text("", encoding="utf-8")
    log.info("%s: %d records, %d documents kept in %.1f s", path, read_stats.records, result["documents_kept"], result["seconds"])
    return result
