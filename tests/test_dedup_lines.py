"""Exact line dedup: counting across parts on Ray and the LineDedup stage."""

from __future__ import annotations

import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.dedup import LineDedup, line_dedup
from pipeline.dedup.lines import LINE_HASHES_FILE, TOO_SHORT
from pipeline.stages.base import apply_stages

pytestmark = pytest.mark.ray

BODY = " ".join(f"word{i}" for i in range(60))  # 60 words, unique to each document below
ENABLED = {"enabled": True, "max_line_count": 1, "min_words_after": 50}


def make_docs() -> list[dict]:
    return [
        {"id": "a", "date": "d", "text": f"Home | About\n{BODY} a\nPosted on 13 May 2019"},
        {"id": "b", "date": "d", "text": f"home about\n{BODY} b\nPosted on 28 May 2019\n"},
        {"id": "c", "date": "d", "text": "Home | About\nonly a few words here"},
        {"id": "d", "date": "d", "text": f"{BODY} d\n\n---\n"},
    ]


def write_parts(tmp_path, rows: list[dict]) -> list[str]:
    paths = []
    for index, chunk in enumerate((rows[:2], rows[2:])):
        path = tmp_path / f"part-{index}.parquet"
        pq.write_table(pa.Table.from_pylist(chunk), path)
        paths.append(str(path))
    return paths


def test_disabled_returns_none(ray_cluster, tmp_path):
    assert line_dedup(write_parts(tmp_path, make_docs()), {"enabled": False}, str(tmp_path / "work")) is None


def test_frequent_lines_removed(ray_cluster, tmp_path):
    stage = line_dedup(write_parts(tmp_path, make_docs()), ENABLED, str(tmp_path / "work"))
    output = stage(pa.Table.from_pylist(make_docs()))
    texts = output.table.column("text").to_pylist()
    assert texts[0] == f"{BODY} a"
    assert texts[1] == f"{BODY} b\n"
    assert output.table.column("line_dedup_lines_removed").to_pylist() == [2, 2, 1, 0]


def test_blank_and_punctuation_lines_kept(ray_cluster, tmp_path):
    stage = line_dedup(write_parts(tmp_path, make_docs()), ENABLED, str(tmp_path / "work"))
    output = stage(pa.Table.from_pylist(make_docs()))
    assert output.table.column("text").to_pylist()[3] == f"{BODY} d\n\n---\n"


def test_short_document_dropped(ray_cluster, tmp_path):
    stage = line_dedup(write_parts(tmp_path, make_docs()), ENABLED, str(tmp_path / "work"))
    kept, rejected, stats = apply_stages([stage], pa.Table.from_pylist(make_docs()))
    assert kept.column("id").to_pylist() == ["a", "b", "d"]
    assert rejected[0].column("reason").to_pylist() == [TOO_SHORT]
    assert stats[0].dropped == {TOO_SHORT: 1}


def test_higher_max_line_count_keeps_lines(ray_cluster, tmp_path):
    config = dict(ENABLED, max_line_count=3)
    stage = line_dedup(write_parts(tmp_path, make_docs()), config, str(tmp_path / "work"))
    output = stage(pa.Table.from_pylist(make_docs()))
    assert output.table.column("line_dedup_lines_removed").to_pylist() == [0, 0, 0, 0]
    assert output.reasons == [None] * 4


def test_repeats_within_one_document_count_once(ray_cluster, tmp_path):
    rows = [{"id": "a", "date": "d", "text": "same line\nsame line\nsame line"}, {"id": "b", "date": "d", "text": "other"}]
    line_dedup(write_parts(tmp_path, rows), ENABLED, str(tmp_path / "work"))
    assert np.load(tmp_path / "work" / LINE_HASHES_FILE).size == 0


def test_near_duplicates_not_counted(ray_cluster, tmp_path):
    docs = make_docs()
    near = pa.table({"id": ["a", "b", "c", "d"], "duplicate": [False, True, True, False]})
    stage = line_dedup(write_parts(tmp_path, docs), ENABLED, str(tmp_path / "work"), near_duplicates=near)
    output = stage(pa.Table.from_pylist(docs))
    assert output.table.column("line_dedup_lines_removed").to_pylist() == [0, 0, 0, 0]


def test_stage_pickles_without_hashes(ray_cluster, tmp_path):
    stage = line_dedup(write_parts(tmp_path, make_docs()), ENABLED, str(tmp_path / "work"))
    stage(pa.Table.from_pylist(make_docs()[:1]))
    copy = pickle.loads(pickle.dumps(stage))
    assert isinstance(copy, LineDedup)
    assert copy._hashes is None
    assert copy(pa.Table.from_pylist(make_docs())).reasons == [None, None, TOO_SHORT, None]


def test_unknown_key_rejected(ray_cluster, tmp_path):
    with pytest.raises(ValueError, match="unknown dedup.lines key 'max_lines'"):
        line_dedup(write_parts(tmp_path, make_docs()), {"max_lines": 2}, str(tmp_path / "work"))
