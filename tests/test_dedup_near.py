"""near_dedup on a real Ray local cluster: planted pairs, chains, survivors, real crawl text."""

from __future__ import annotations

import collections
import gzip
import itertools
import json
import unicodedata

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.dedup import near_dedup

pytestmark = pytest.mark.ray

WORDS_PER_DOC = 500  # 496 word 5-grams per document
EARLY, LATE = "2019-07-01T00:00:00Z", "2019-07-20T00:00:00Z"


def random_words(rng: np.random.Generator, count: int) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return ["".join(rng.choice(letters, 7)) for _ in range(count)]


def mutate(words: list[str], changes: int, tag: str, offset: int = 0) -> list[str]:
    """Replace `changes` words spaced at least 5 apart; each replacement changes 5 shingles."""
    changed = list(words)
    spacing = len(words) // (changes + 1)
    for i in range(changes):
        changed[offset + spacing * (i + 1)] = f"{tag}x{i}"
    return changed


def shingle_set(words: list[str]) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + 5]) for i in range(len(words) - 4)}


def exact_jaccard(left: list[str], right: list[str]) -> float:
    a, b = shingle_set(left), shingle_set(right)
    return len(a & b) / len(a | b)


def write_parts(tmp_path, rows: list[dict], count: int) -> list[str]:
    paths = []
    size = -(-len(rows) // count)
    for index in range(count):
        chunk = rows[index * size : (index + 1) * size]
        path = tmp_path / f"part-{index}.parquet"
        pq.write_table(pa.Table.from_pylist(chunk), path, row_group_size=7)
        paths.append(str(path))
    return paths


def by_id(result: pa.Table) -> dict[str, dict]:
    return {row["id"]: row for row in result.to_pylist()}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """40 random documents, 10 variants at Jaccard 0.90 and 10 at 0.50, in 3 parts."""
    rng = np.random.default_rng(11)
    tmp_path = tmp_path_factory.mktemp("planted")
    bases = [random_words(rng, WORDS_PER_DOC) for _ in range(40)]
    rows = [{"id": f"base-{i:02d}", "date": EARLY, "text": " ".join(words)} for i, words in enumerate(bases)]
    similar, distant = {}, {}
    for i in range(10):
        close = mutate(bases[i], 5, f"near{i}")  # (496 - 25) / (496 + 25) = 0.904
        far = mutate(bases[10 + i], 33, f"far{i}")  # (496 - 165) / (496 + 165) = 0.501
        similar[f"close-{i:02d}"], distant[f"far-{i:02d}"] = exact_jaccard(bases[i], close), exact_jaccard(bases[10 + i], far)
        rows.append({"id": f"close-{i:02d}", "date": LATE, "text": " ".join(close)})
        rows.append({"id": f"far-{i:02d}", "date": LATE, "text": " ".join(far)})
    return {"parts": write_parts(tmp_path, rows, 3), "similar": similar, "distant": distant, "rows": rows}


def test_planted_jaccards_are_as_designed(planted):
    assert all(0.9 <= value < 0.91 for value in planted["similar"].values())
    assert all(0.5 <= value < 0.51 for value in planted["distant"].values())


def test_pairs_at_0_9_found(ray_cluster, planted, tmp_path):
    result = by_id(near_dedup(planted["parts"], {}, str(tmp_path)))
    for i in range(10):
        assert result[f"close-{i:02d}"]["duplicate"], f"close-{i:02d} not found"
        assert result[f"close-{i:02d}"]["duplicate_of"] == f"base-{i:02d}"
        assert result[f"close-{i:02d}"]["dedup_cluster"] == f"base-{i:02d}"
        assert not result[f"base-{i:02d}"]["duplicate"]


def test_pairs_at_0_5_not_found(ray_cluster, planted, tmp_path):
    result = by_id(near_dedup(planted["parts"], {}, str(tmp_path)))
    for i in range(10):
        assert not result[f"far-{i:02d}"]["duplicate"]
        assert result[f"far-{i:02d}"]["dedup_cluster"] == f"far-{i:02d}"
    assert sum(row["duplicate"] for row in result.values()) == 10


def test_result_has_one_row_per_document_in_order(ray_cluster, planted, tmp_path):
    result = near_dedup(planted["parts"], {}, str(tmp_path))
    assert result.column("id").to_pylist() == [row["id"] for row in planted["rows"]]
    assert result.column_names == ["id", "dedup_cluster", "duplicate", "duplicate_of"]
    stats = json.loads((tmp_path / "near_dedup_stats.json").read_text())
    assert stats["documents"] == 60
    assert stats["duplicates"] == 10


def test_verification_off_still_finds_close_pairs(ray_cluster, planted, tmp_path):
    result = by_id(near_dedup(planted["parts"], {"verify": False}, str(tmp_path)))
    assert all(result[f"close-{i:02d}"]["duplicate"] for i in range(10))


def test_disabled_marks_nothing(ray_cluster, planted, tmp_path):
    result = near_dedup(planted["parts"], {"enabled": False}, str(tmp_path))
    assert result.num_rows == 60
    assert not any(result.column("duplicate").to_pylist())


def test_unknown_config_key_rejected(ray_cluster, planted, tmp_path):
    with pytest.raises(ValueError, match="unknown dedup.minhash key 'band'"):
        near_dedup(planted["parts"], {"band": 3}, str(tmp_path))


def test_chain_forms_one_cluster(ray_cluster, tmp_path):
    rng = np.random.default_rng(5)
    first = random_words(rng, 1000)  # 996 shingles
    middle = mutate(first, 12, "m")  # (996 - 60) / (996 + 60) = 0.886
    last = mutate(middle, 12, "l", offset=30)
    assert exact_jaccard(first, middle) >= 0.8
    assert exact_jaccard(middle, last) >= 0.8
    assert exact_jaccard(first, last) < 0.8
    rows = [
        {"id": "chain-a", "date": EARLY, "text": " ".join(first)},
        {"id": "chain-b", "date": EARLY, "text": " ".join(middle)},
        {"id": "chain-c", "date": EARLY, "text": " ".join(last)},
        {"id": "other", "date": EARLY, "text": " ".join(random_words(rng, 1000))},
    ]
    result = by_id(near_dedup(write_parts(tmp_path, rows, 2), {}, str(tmp_path / "work")))
    assert {result[name]["dedup_cluster"] for name in ("chain-a", "chain-b", "chain-c")} == {"chain-a"}
    assert [result[name]["duplicate"] for name in ("chain-a", "chain-b", "chain-c")] == [False, True, True]
    assert not result["other"]["duplicate"]


def test_survivor_earliest_date_then_smallest_id(ray_cluster, tmp_path):
    rng = np.random.default_rng(8)
    shared, other = random_words(rng, 300), random_words(rng, 300)
    rows = [
        # Cluster 1: two documents share the earliest date; the smaller id wins.
        {"id": "c", "date": "2019-07-02T00:00:00Z", "text": " ".join(shared)},
        {"id": "b", "date": "2019-07-01T00:00:00Z", "text": " ".join(mutate(shared, 1, "b"))},
        {"id": "d", "date": "2019-07-01T00:00:00Z", "text": " ".join(mutate(shared, 1, "d"))},
        {"id": "a", "date": None, "text": " ".join(mutate(shared, 1, "a"))},
        # Cluster 2: the earliest date wins over a smaller id.
        {"id": "x1", "date": "2019-07-09T00:00:00Z", "text": " ".join(other)},
        {"id": "x2", "date": "2019-07-08T00:00:00Z", "text": " ".join(mutate(other, 1, "x"))},
    ]
    result = by_id(near_dedup(write_parts(tmp_path, rows, 2), {}, str(tmp_path / "work")))
    assert [result[name]["dedup_cluster"] for name in ("a", "b", "c", "d")] == ["b"] * 4
    assert [result[name]["duplicate"] for name in ("a", "b", "c", "d")] == [True, False, True, True]
    assert result["x1"]["duplicate_of"] == "x2"
    assert not result["x2"]["duplicate"]


def test_one_survivor_per_cluster(ray_cluster, planted, tmp_path):
    result = near_dedup(planted["parts"], {}, str(tmp_path))
    clusters = collections.defaultdict(list)
    for row in result.to_pylist():
        clusters[row["dedup_cluster"]].append(row)
    for cluster, members in clusters.items():
        survivors = [row["id"] for row in members if not row["duplicate"]]
        assert survivors == [cluster]


def test_empty_and_short_texts_never_duplicates(ray_cluster, tmp_path):
    rows = [{"id": f"e{i}", "date": EARLY, "text": text} for i, text in enumerate(["", "", "Read more", "Read more", None])]
    result = near_dedup(write_parts(tmp_path, rows, 1), {}, str(tmp_path / "work"))
    assert not any(result.column("duplicate").to_pylist())


def test_same_result_with_1_and_2_workers(ray_cluster, planted, tmp_path):
    one = near_dedup(planted["parts"], {"concurrency": 1, "rows_per_task": 7}, str(tmp_path / "one"))
    two = near_dedup(planted["parts"], {"concurrency": 2, "rows_per_task": 7}, str(tmp_path / "two"))
    again = near_dedup(planted["parts"], {"concurrency": 2, "rows_per_task": 7}, str(tmp_path / "again"))
    assert one.equals(two)
    assert two.equals(again)


def test_same_result_for_other_partitions_and_parts(ray_cluster, planted, tmp_path):
    reference = near_dedup(planted["parts"], {}, str(tmp_path / "reference"))
    other_partitions = near_dedup(planted["parts"], {"num_partitions": 3}, str(tmp_path / "three"))
    one_part = near_dedup(write_parts(tmp_path, planted["rows"], 1), {}, str(tmp_path / "single"))
    assert other_partitions.equals(reference)
    assert one_part.equals(reference)


# Real crawl text.


def words_of(text: str) -> list[str]:
    """Normalize like the pipeline (NFD, no accents, lowercase, punctuation to spaces), independently."""
    characters = []
    for character in unicodedata.normalize("NFD", text.lower()):
        category = unicodedata.category(character)
        if category == "Mn":
            continue
        characters.append(" " if category[0] in "PS" else character)
    return "".join(characters).split()


def brute_force_clusters(rows: list[dict], threshold: float) -> list[set[str]]:
    """Return the clusters of documents linked by word 5-gram Jaccard >= threshold."""
    sets = {row["id"]: shingle_set(words_of(row["text"])) for row in rows}
    holders = collections.defaultdict(list)
    for doc_id, shingles in sets.items():
        for shingle in shingles:
            holders[shingle].append(doc_id)
    pairs = {pair for docs in holders.values() for pair in itertools.combinations(sorted(docs), 2)}
    parent = {doc_id: doc_id for doc_id in sets}

    def root(node: str) -> str:
        while parent[node] != node:
            node = parent[node]
        return node

    for left, right in pairs:
        union = len(sets[left] | sets[right])
        if union and len(sets[left] & sets[right]) / union >= threshold:
            parent[root(left)] = root(right)
    clusters = collections.defaultdict(set)
    for doc_id in sets:
        clusters[root(doc_id)].add(doc_id)
    return [members for members in clusters.values() if len(members) > 1]


@pytest.fixture(scope="module")
def crawl_rows(shared_data) -> list[dict]:
    path = shared_data / "cc-text" / "cc-main-2019-30-697-docs.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    return [{"id": r["id"], "date": r["metadata"]["warc_date"], "text": r["text"]} for r in records]


def test_real_crawl_duplicates_match_brute_force(ray_cluster, crawl_rows, tmp_path):
    expected = brute_force_clusters(crawl_rows, 0.8)
    assert sorted(len(members) for members in expected) == [2, 3]  # one identical triple, one pair at 0.98
    dates = {row["id"]: row["date"] for row in crawl_rows}
    expected_duplicates = set()
    for members in expected:
        survivor = min(members, key=lambda doc_id: (dates[doc_id], doc_id))
        expected_duplicates |= members - {survivor}

    result = near_dedup(write_parts(tmp_path, crawl_rows, 2), {"threshold": 0.8, "verify": True}, str(tmp_path / "work"))
    found = {row["id"] for row in result.to_pylist() if row["duplicate"]}
    assert found == expected_duplicates
    clusters = collections.defaultdict(set)
    for row in result.to_pylist():
        clusters[row["dedup_cluster"]].add(row["id"])
    assert sorted(map(sorted, (c for c in clusters.values() if len(c) > 1))) == sorted(map(sorted, expected))
