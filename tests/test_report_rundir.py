"""A hand-built run directory from real crawl text, and tests of the readers the report and `inspect` use.

`build_run_dir` writes stats.json, config.yaml, documents/, rejected/ and tokens/ in the
documented formats, with scores computed by hand. Every report and inspect test gets this
run through `report_run_dir`. The browser tests also render the report of a real run.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import dump_config, load_config
from pipeline.report import rundir, signals

CC_TEXT = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "cc-text" / "cc-main-2019-30-697-docs.jsonl.gz"
INPUTS = ["crawl/CC-MAIN-2019-30-part-00000.warc.gz", "crawl/CC-MAIN-2019-30-part-00001.warc.gz"]
LANGUAGES = ["en", "es", "de", "fr", "it", "pt"]
# The fixture's read stage drops these archive records before any text exists.
READ_DROPS = {"not_html": 31, "status_not_200": 12}
# A rejected document whose URL and text must come out HTML-escaped.
HOSTILE_URL = "http://evil.example/<script>alert('url')</script>?q=\"x\"&y=1"
HOSTILE_TEXT = "<script>alert('text')</script>\n<img src=x onerror=alert(1)> short"

STOP_WORDS = {
    "en": {"the", "and", "of", "to", "is", "in", "that", "with"},
    "es": {"el", "la", "de", "que", "y", "los", "en", "por"},
    "de": {"der", "die", "und", "das", "ist", "nicht", "mit", "den"},
    "fr": {"le", "la", "les", "et", "des", "est", "une", "pour"},
    "it": {"il", "di", "che", "è", "per", "una", "della", "non"},
    "pt": {"o", "os", "não", "uma", "para", "com", "do", "da"},
}


def guess_language(words: list[str]) -> tuple[str, float]:
    """Guess a language by stop-word hits; the score is the winner's share of all hits."""
    lowered = [word.lower() for word in words]
    hits = {language: sum(word in stops for word in lowered) for language, stops in STOP_WORDS.items()}
    best = max(hits, key=hits.get)
    total = sum(hits.values())
    return (best, hits[best] / total) if total else ("unknown", 0.0)


def gopher_metrics(text: str) -> dict:
    words = text.split()
    lines = [line for line in text.splitlines() if line.strip()]
    return {
        "gopher_word_count": len(words),
        "gopher_mean_word_length": float(np.mean([len(word) for word in words])) if words else 0.0,
        "gopher_hash_word_ratio": sum(word.count("#") for word in words) / max(1, len(words)),
        "gopher_stop_word_count": sum(word.lower() in STOP_WORDS["en"] for word in words),
        "gopher_dup_line_frac": 1 - len(set(lines)) / len(lines) if lines else 0.0,
    }


def quality_score(document: dict) -> float:
    """A stand-in for the fastText quality classifier: a seeded score that rises with length."""
    noise = int(hashlib.md5(document["id"].encode()).hexdigest(), 16) % 1000 / 1000
    return min(1.0, 0.6 * noise + document["gopher_word_count"] / 4000)


def load_documents() -> list[dict]:
    documents = []
    with gzip.open(CC_TEXT, "rt", encoding="utf-8") as lines:
        for index, line in enumerate(lines):
            record = json.loads(line)
            source_file = INPUTS[index % len(INPUTS)]
            documents.append({
                "id": f"<urn:uuid:{hashlib.md5(str(index).encode()).hexdigest()}>",
                "url": record["metadata"]["warc_url"],
                "date": "2019-07-16T12:00:00Z",
                "source": f"{source_file}:{index * 4096}",
                "source_file": source_file,
                "source_offset": index * 4096,
                "text": record["text"],
            })
    documents.append({**documents[-1], "id": "<urn:uuid:hostile>", "url": HOSTILE_URL, "text": HOSTILE_TEXT})
    return documents


def run_stages(documents: list[dict], config: dict) -> tuple[list[dict], list[dict], list[dict]]:
    """Apply extract, langid, Gopher rules and exact dedup by hand; return kept, rejected and stage stats."""
    quality = config["gopher_quality"]
    checks = [
        ("extract", lambda d: "empty_text" if not d["text"].strip() else None, lambda d: {}),
        ("langid", lambda d: ("language_not_kept" if d["language"] not in config["langid"]["languages"] else
                              "language_score_low" if d["language_score"] < config["langid"]["min_language_score"] else None),
         lambda d: dict(zip(("language", "language_score"), guess_language(d["text"].split())))),
        ("gopher_quality", lambda d: ("gopher_min_words" if d["gopher_word_count"] < quality["min_doc_words"] else
                                      "gopher_max_mean_word_length" if d["gopher_mean_word_length"] > quality["max_avg_word_length"] else
                                      "gopher_hash_word_ratio" if d["gopher_hash_word_ratio"] > quality["max_symbol_word_ratio"] else
                                      "gopher_stop_words" if d["gopher_stop_word_count"] < quality["min_stop_words"] else None),
         lambda d: {k: v for k, v in gopher_metrics(d["text"]).items() if k != "gopher_dup_line_frac"}),
        ("gopher_repetition", lambda d: ("gopher_dup_line_frac" if d["gopher_dup_line_frac"] > config["gopher_repetition"]["dup_line_frac"]
                                         else None),
         lambda d: {"gopher_dup_line_frac": gopher_metrics(d["text"])["gopher_dup_line_frac"]}),
        ("classifiers", lambda d: "quality_score_below_min" if d["quality_score"] < config["classifiers"]["models"][0]["min_score"] else None,
         lambda d: {"quality_score": quality_score(d)}),
    ]
    total_bytes = sum(len(d["text"].encode()) for d in documents)
    stages = [stage_stats("read", sum(READ_DROPS.values()) + len(documents), len(documents), 0, total_bytes, dict(READ_DROPS))]
    kept, rejected = documents, []
    for name, check, tag in checks:
        kept, dropped = apply(name, kept, check, tag)
        rejected += dropped
        stages.append(stage_stats(name, len(kept) + len(dropped), len(kept), byte_count(kept + dropped), byte_count(kept),
                                  dict(Counter(d["reason"] for d in dropped))))
    kept, dropped = exact_dedup(kept)
    rejected += dropped
    stages.append(stage_stats("dedup", len(kept) + len(dropped), len(kept), byte_count(kept + dropped), byte_count(kept),
                              dict(Counter(d["reason"] for d in dropped))))
    return kept, rejected, stages


def apply(name, documents, check, tag):
    kept, dropped = [], []
    for document in documents:
        document = {**document, **tag(document)}
        reason = check(document)
        if reason is None:
            kept.append(document)
        else:
            dropped.append({**document, "stage": name, "reason": reason})
    return kept, dropped


def exact_dedup(documents: list[dict]) -> tuple[list[dict], list[dict]]:
    cluster_by_text: dict[str, int] = {}
    kept, dropped = [], []
    for document in documents:
        seen = document["text"] in cluster_by_text
        cluster = cluster_by_text.setdefault(document["text"], document["id"])
        document = {**document, "dedup_cluster": cluster}
        if seen:
            dropped.append({**document, "duplicate_of": cluster, "stage": "dedup", "reason": "exact_duplicate"})
        else:
            kept.append(document)
    return kept, dropped


def byte_count(documents: list[dict]) -> int:
    return sum(len(d["text"].encode()) for d in documents)


def stage_stats(stage, documents_in, documents_out, bytes_in, bytes_out, dropped) -> dict:
    return {"stage": stage, "documents_in": documents_in, "documents_out": documents_out, "bytes_in": bytes_in,
            "bytes_out": bytes_out, "dropped": dict(sorted(dropped.items())), "seconds": round(0.0004 * documents_in + 0.01, 4)}


SCHEMA = pa.schema([
    ("id", pa.string()), ("url", pa.string()), ("date", pa.string()), ("source", pa.string()),
    ("source_file", pa.string()), ("source_offset", pa.int64()), ("text", pa.string()),
    ("language", pa.string()), ("language_score", pa.float32()), ("gopher_word_count", pa.int64()),
    ("gopher_mean_word_length", pa.float64()), ("gopher_hash_word_ratio", pa.float64()), ("gopher_stop_word_count", pa.int64()),
    ("gopher_dup_line_frac", pa.float64()), ("quality_score", pa.float64()), ("dedup_cluster", pa.string()),
    ("duplicate_of", pa.string()),
])


def write_parquet(path: Path, rows: list[dict], schema: pa.Schema) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Small row groups, so reads of single rows cross row-group boundaries.
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, row_group_size=64)


def write_tokens(run: Path, kept: list[dict]) -> int:
    train = [d for d in kept if int(hashlib.md5(d["id"].encode()).hexdigest(), 16) % 20]
    val = [d for d in kept if d not in train]
    shards = []
    for split, documents in (("train", train[: len(train) // 2]), ("train", train[len(train) // 2:]), ("val", val)):
        tokens = sum(int(len(d["text"].split()) * 1.3) + 1 for d in documents)
        index = sum(1 for shard in shards if shard["split"] == split)
        shards.append({"file": f"{split}_{index:06d}.bin", "split": split, "tokens": tokens, "documents": len(documents)})
    manifest = {
        "format": 1, "dtype": "uint16", "eos_id": 50256, "vocab_size": 50257,
        "tokenizer": {"name": "gpt2", "sha256": "0" * 64, "files": ["tokenizer/encoder.json", "tokenizer/vocab.bpe"]},
        "shards": shards,
        "train_tokens": sum(s["tokens"] for s in shards if s["split"] == "train"),
        "val_tokens": sum(s["tokens"] for s in shards if s["split"] == "val"),
        "documents": len(kept),
    }
    (run / "tokens").mkdir(parents=True, exist_ok=True)
    (run / "tokens" / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest["train_tokens"] + manifest["val_tokens"]


def build_run_dir(run: Path) -> Path:
    """Write a complete run directory for the 697 real documents of cc-text into `run`."""
    config = load_config(overrides={"langid": {"languages": LANGUAGES}})
    documents = load_documents()
    kept, rejected, stages = run_stages(documents, config)

    run.mkdir(parents=True, exist_ok=True)
    dump_config(config, run / "config.yaml")
    rejected_schema = SCHEMA.append(pa.field("stage", pa.string())).append(pa.field("reason", pa.string()))
    for source_file in INPUTS:
        key = hashlib.sha256(source_file.encode()).hexdigest()[:16]
        write_parquet(run / "documents" / f"{key}.parquet", [d for d in kept if d["source_file"] == source_file], SCHEMA)
        write_parquet(run / "rejected" / f"{key}.parquet", [d for d in rejected if d["source_file"] == source_file], rejected_schema)
    tokens = write_tokens(run, kept)

    files = {}
    for number, source_file in enumerate(INPUTS):
        count = sum(1 for d in documents if d["source_file"] == source_file)
        errors = ["record at offset 73421: invalid WARC header line b'WARC/1.0\\x00'"] if number == 1 else []
        files[source_file] = {"records": count + 20 + number, "documents": count, "skipped": {"request": 20 + number},
                              "errors": errors, "seconds": 1.5 + number}
    stats = {
        "run": {"run_dir": str(run), "inputs": INPUTS, "started": "2026-11-01T10:00:00Z", "finished": "2026-11-01T10:00:09Z",
                "seconds": 9.2, "documents_kept": len(kept), "tokens": tokens},
        "stages": stages,
        "files": files,
        "tokens": {"train_tokens": tokens, "val_tokens": 0, "shards": 3},
    }
    (run / "stats.json").write_text(json.dumps(stats, indent=2))
    return run


@pytest.fixture(scope="module")
def report_run_dir(tmp_path_factory) -> Path:
    """A finished run directory for the report and inspect tests."""
    return build_run_dir(tmp_path_factory.mktemp("run"))


def test_fixture_stages_chain(report_run_dir):
    stages = rundir.load_stats(report_run_dir)["stages"]
    for previous, stage in zip(stages, stages[1:]):
        assert stage["documents_in"] == previous["documents_out"]
    for stage in stages:
        assert stage["documents_in"] - stage["documents_out"] == sum(stage["dropped"].values())


def test_fixture_rejected_rows_match_stats(report_run_dir):
    reasons = rundir.value_counts(rundir.parquet_files(report_run_dir, rundir.REJECTED), "reason")
    expected = Counter()
    for stage in rundir.load_stats(report_run_dir)["stages"][1:]:
        expected.update(stage["dropped"])
    assert reasons == expected
    assert len(reasons) >= 5


def test_load_stats_missing_file(tmp_path):
    assert rundir.load_stats(tmp_path) == {"run": {}, "stages": [], "files": {}, "tokens": {}}


def test_sample_rows_by_reason(report_run_dir):
    files = rundir.parquet_files(report_run_dir, rundir.REJECTED)
    samples = rundir.sample_rows(files, 2, seed=3, group_by="reason")
    for reason, rows in samples.items():
        assert 1 <= len(rows) <= 2
        assert {row["reason"] for row in rows} == {reason}
        assert all("text" in row for row in rows)


def test_sample_rows_same_seed_same_rows(report_run_dir):
    files = rundir.parquet_files(report_run_dir, rundir.KEPT)
    first = [row["id"] for row in rundir.sample_rows(files, 5, seed=7)[""]]
    second = [row["id"] for row in rundir.sample_rows(files, 5, seed=7)[""]]
    assert first == second
    assert len(set(first)) == 5


def test_read_rows_across_row_groups(tmp_path):
    path = tmp_path / "numbers.parquet"
    pq.write_table(pa.table({"n": list(range(300))}), path, row_group_size=64)
    rows = rundir.read_rows(path, np.array([0, 63, 64, 200, 299]))
    assert [row["n"] for row in rows] == [0, 63, 64, 200, 299]


def test_numeric_values_caps_rows(tmp_path):
    path = tmp_path / "scores.parquet"
    pq.write_table(pa.table({"score": np.linspace(0, 1, 10_000), "none": pa.nulls(10_000, pa.float64())}), path)
    values = rundir.numeric_values([path], ["score", "none", "absent"], max_rows=1_000)
    assert 800 < len(values["score"]) < 1_200
    assert len(values["none"]) == 0
    assert len(values["absent"]) == 0


def test_url_hosts_lowercase_without_port():
    urls = pa.chunked_array([["HTTP://User@Example.COM:8080/a?b", "https://x.org", "not a url", None]])
    assert rundir.url_hosts(urls).to_pylist() == ["example.com", "x.org", None, None]


def test_url_matcher_invalid_regex_is_substring():
    assert rundir.url_matcher("a(b").search("http://x/a(b") is not None
    assert rundir.url_matcher(r"x\.org/\d+").search("https://x.org/42") is not None


def test_thresholds_from_config():
    config = load_config()
    found = signals.thresholds(config)
    assert [t.value for t in found["gopher_word_count"]] == [50, 100000]
    assert [t.is_minimum for t in found["gopher_word_count"]] == [True, False]
    assert found["gopher_top_2gram_frac"][0].value == 0.2
    assert found["gopher_alpha_word_frac"][0].is_minimum
    assert found["language_score"][0].key == "langid.min_language_score"
    assert found["quality_score"] == [signals.Threshold("classifiers.models.0.min_score", 0.1, True)]
    assert "toxicity_score" not in found


def test_thresholds_skip_disabled_section():
    config = load_config(overrides={"gopher_quality": {"enabled": False}})
    assert "gopher_word_count" not in signals.thresholds(config)
    assert "language_score" in signals.thresholds(config)


def test_classifier_thresholds_from_models_list():
    config = {"classifiers": {"models": [{"column": "edu_score", "min_score": 0.3, "max_score": 0.9}, {"column": "junk_score"}]}}
    assert [t.value for t in signals.thresholds(config)["edu_score"]] == [0.3, 0.9]
    assert "junk_score" not in signals.thresholds(config)


def test_reason_columns_name_the_score():
    row = {"gopher_word_count": 12, "gopher_mean_word_length": 4.0, "language": "en", "language_score": 0.4,
           "edu_score": 0.2, "gopher_dup_line_frac": 0.5}
    assert signals.reason_columns("gopher_min_words", row) == ["gopher_word_count"]
    assert signals.reason_columns("language_score_low", row) == ["language", "language_score"]
    assert signals.reason_columns("gopher_dup_line_frac", row) == ["gopher_dup_line_frac"]
    assert signals.reason_columns("edu_score_below_min", row) == ["edu_score"]
    assert signals.reason_columns("not_html", row) == []


def test_hostile_row_is_rejected(report_run_dir):
    rows = rundir.sample_rows(rundir.parquet_files(report_run_dir, rundir.REJECTED), 5, seed=0,
                              where=lambda table: np.array([url == HOSTILE_URL for url in table.column("url").to_pylist()]),
                              filter_columns=("url",))
    assert [row["text"] for row in rows[""]] == [HOSTILE_TEXT]
