"""Measure MinHash signature throughput against datasketch, and the whole near-dedup phase.

Part 1 signs the same documents on one core with `pipeline.dedup` (text to signature) and
with datasketch `MinHash.bulk` (shingle bytes to signature), and prints both and the ratio.
Part 2 runs `near_dedup` on a fresh 2-CPU Ray local cluster over synthetic documents with
planted near-duplicates of known word 5-gram Jaccard, and reports wall time, peak memory
and pair precision and recall against the planted truth.
Run: `.venv/bin/python benchmarks/dedup_bench.py --sizes 10000 100000 1000000`.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.dedup import near_dedup  # noqa: E402
from pipeline.dedup.minhash import band_keys, permutations, signatures  # noqa: E402
from pipeline.dedup.shingles import normalize_text, split_words, text_shingles  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data"
VOCABULARY_SIZE = 50_000
VARIANT_EVERY = 10  # one document in ten is a planted variant of an earlier document
POSITIVE_TARGETS = (0.82, 0.85, 0.9, 0.95, 1.0)
NEGATIVE_TARGETS = (0.5, 0.6, 0.7, 0.75)
DOCS_PER_PART = 20_000
ROW_GROUP_ROWS = 5_000

log = logging.getLogger("dedup_bench")


# Part 1: signature throughput.


def throughput_texts(data_dir: Path, synthetic: int) -> list[str]:
    """Return the real crawl texts with at least 5 words, plus `synthetic` generated documents."""
    with gzip.open(data_dir / "cc-text" / "cc-main-2019-30-697-docs.jsonl.gz", "rt", encoding="utf-8") as handle:
        texts = [json.loads(line)["text"] for line in handle]
    texts = [text for text in texts if len(text.split()) >= 5]
    generator = DocumentGenerator(seed=7)
    return texts + [generator.text(generator.words(i)) for i in range(synthetic)]


def best_seconds(function, rounds: int) -> float:
    """Return the fastest of `rounds` timed calls, the least disturbed by other load."""
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return min(timings)


def signature_throughput(texts: list[str], rounds: int) -> dict:
    """Time text-to-signature and shingles-to-signature paths of ours and datasketch on one core.

    Both sides share our Arrow normalization and word split. datasketch then gets 5-gram
    byte strings joined in Python and hashes them with its default SHA-1 hash; we hash
    the words and n-grams with NumPy. The kernel figures time only shingles to signature.
    """
    from datasketch import MinHash

    megabytes = sum(len(text.encode("utf-8")) for text in texts) / 1e6
    array = pa.array(texts)
    a, b = permutations(128, 1)
    shingles, offsets = text_shingles(array, 5)

    def ours() -> None:
        text_shingles_again, text_offsets = text_shingles(array, 5)
        band_keys(signatures(text_shingles_again, text_offsets, a, b), 16, 8)

    def shingle_bytes() -> list[list[bytes]]:
        words, word_offsets = split_words(normalize_text(array))
        words = words.to_pylist()
        lists = []
        for i in range(len(texts)):
            doc = words[word_offsets[i] : word_offsets[i + 1]]
            lists.append([" ".join(doc[j : j + 5]).encode("utf-8") for j in range(len(doc) - 4)])
        return lists

    shingle_lists = shingle_bytes()
    timings = {
        "ours_seconds": best_seconds(ours, rounds),
        "ours_kernel_seconds": best_seconds(lambda: signatures(shingles, offsets, a, b), rounds),
        "datasketch_seconds": best_seconds(lambda: MinHash.bulk(shingle_bytes(), num_perm=128, seed=1), 1),
        "datasketch_kernel_seconds": best_seconds(lambda: MinHash.bulk(shingle_lists, num_perm=128, seed=1), 1),
    }
    figures = {"documents": len(texts), "megabytes": round(megabytes, 2), **timings}
    for name in ("ours", "ours_kernel", "datasketch", "datasketch_kernel"):
        figures[f"{name}_mb_per_s"] = megabytes / timings[f"{name}_seconds"]
        figures[f"{name}_docs_per_s"] = len(texts) / timings[f"{name}_seconds"]
    figures["ratio"] = timings["datasketch_seconds"] / timings["ours_seconds"]
    figures["kernel_ratio"] = timings["datasketch_kernel_seconds"] / timings["ours_kernel_seconds"]
    return figures


# Part 2: the whole phase on synthetic documents.


class DocumentGenerator:
    """Deterministic synthetic documents: Zipf-distributed words, 100 to 300 per document."""

    def __init__(self, seed: int):
        rng = np.random.default_rng(seed)
        letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
        lengths = rng.integers(2, 11, VOCABULARY_SIZE)
        self.vocabulary = np.array(["".join(rng.choice(letters, n)) for n in lengths])
        weights = 1.0 / np.arange(1, VOCABULARY_SIZE + 1)
        self.cumulative = np.cumsum(weights / weights.sum())
        self.seed = seed

    def words(self, index: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, index])
        count = int(rng.integers(100, 301))
        ranks = np.minimum(np.searchsorted(self.cumulative, rng.random(count)), VOCABULARY_SIZE - 1)
        return self.vocabulary[ranks]

    @staticmethod
    def text(words: np.ndarray) -> str:
        return " ".join(words.tolist())


def plant_variant(words: np.ndarray, target: float, tag: str) -> tuple[np.ndarray, float]:
    """Replace k words spaced at least 5 apart so the 5-gram Jaccard is about `target`.

    Each replaced word (a new, unique word) changes exactly 5 shingles, so with S shingles
    the Jaccard is (S - 5k) / (S + 5k). Returns the variant and that exact Jaccard.
    """
    shingle_count = len(words) - 4
    changes = int(round(shingle_count * (1 - target) / (5 * (1 + target))))
    variant = words.copy()
    spacing = len(words) // (changes + 1)
    for j in range(changes):
        variant[spacing * (j + 1)] = f"{tag}q{j}"
    return variant, (shingle_count - 5 * changes) / (shingle_count + 5 * changes)


def base_of(index: int, rng: np.random.Generator) -> int:
    """Draw the earlier non-variant document that variant `index` copies, uniformly."""
    return int(rng.integers(0, index // VARIANT_EVERY)) * VARIANT_EVERY + int(rng.integers(0, VARIANT_EVERY - 1))


def write_corpus(out_dir: Path, documents: int, seed: int) -> tuple[list[str], list[tuple[str, str, float]]]:
    """Write the synthetic parts; return their paths and the planted (base, variant, Jaccard) pairs."""
    generator = DocumentGenerator(seed)
    rng = np.random.default_rng(seed)
    planted = []
    paths = []
    for first in range(0, documents, DOCS_PER_PART):
        ids, dates, texts = [], [], []
        for index in range(first, min(documents, first + DOCS_PER_PART)):
            words = generator.words(index)
            if index % VARIANT_EVERY == VARIANT_EVERY - 1 and index > VARIANT_EVERY:
                base = base_of(index, rng)
                targets = POSITIVE_TARGETS if rng.random() < 0.7 else NEGATIVE_TARGETS
                words, similarity = plant_variant(generator.words(base), float(rng.choice(targets)), f"v{index}")
                planted.append((f"doc-{base:07d}", f"doc-{index:07d}", similarity))
            ids.append(f"doc-{index:07d}")
            dates.append(f"2019-07-{1 + int(rng.integers(0, 28)):02d}T00:00:00Z")
            texts.append(generator.text(words))
        path = out_dir / f"part-{first // DOCS_PER_PART:04d}.parquet"
        pq.write_table(pa.table({"id": ids, "date": dates, "text": texts}), path, row_group_size=ROW_GROUP_ROWS)
        paths.append(str(path))
    return paths, planted


def cluster_pairs(groups) -> set[tuple[str, str]]:
    pairs = set()
    for members in groups:
        pairs.update(itertools.combinations(sorted(members), 2))
    return pairs


def score(result: pa.Table, planted: list[tuple[str, str, float]], threshold: float) -> dict:
    """Compare predicted clusters with the planted truth, as pairs of same-cluster documents."""
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for base, variant, similarity in planted:
        if similarity >= threshold:
            parent[root(variant)] = root(base)
    truth_groups = defaultdict(set)
    for node in list(parent):
        truth_groups[root(node)].add(node)
    truth = cluster_pairs(group for group in truth_groups.values() if len(group) > 1)

    clustered = result.filter(pa.compute.not_equal(result.column("id"), result.column("dedup_cluster")))
    predicted_groups = defaultdict(set)
    for doc_id, cluster in zip(clustered.column("id").to_pylist(), clustered.column("dedup_cluster").to_pylist()):
        predicted_groups[cluster].update((doc_id, cluster))
    predicted = cluster_pairs(predicted_groups.values())

    correct = len(predicted & truth)
    found_by_bin = defaultdict(lambda: [0, 0])  # Jaccard bin -> [found, planted]
    for base, variant, similarity in planted:
        if similarity >= threshold:
            low = min(0.95, np.floor(similarity * 20) / 20)
            found_by_bin[f"{low:.2f}"][0] += tuple(sorted((base, variant))) in predicted
            found_by_bin[f"{low:.2f}"][1] += 1
    negatives = [(base, variant) for base, variant, similarity in planted if similarity < threshold]
    return {
        "true_pairs": len(truth),
        "predicted_pairs": len(predicted),
        "precision": correct / len(predicted) if predicted else 1.0,
        "recall": correct / len(truth) if truth else 1.0,
        "planted_negatives_merged": sum(tuple(sorted(pair)) in predicted for pair in negatives),
        "planted_negatives": len(negatives),
        "recall_by_jaccard": {name: found / total for name, (found, total) in sorted(found_by_bin.items())},
    }


class MemorySampler:
    """Sample the summed RSS of this process and all its descendants (Ray's daemons and workers).

    Object-store pages mapped by several processes count once per process, so the sum is
    an upper bound on the physical memory in use.
    """

    def __init__(self, interval_s: float = 0.5):
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, tree_rss_bytes(os.getpid()))
            self._stop.wait(self.interval_s)


def tree_rss_bytes(root: int) -> int:
    """Return the summed VmRSS of `root` and its descendants, read from /proc."""
    children = defaultdict(list)
    rss = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", encoding="utf-8") as handle:
                fields = dict(line.split(":", 1) for line in handle if ":" in line)
        except OSError:
            continue
        pid = int(entry)
        children[int(fields.get("PPid", "0").strip())].append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def run_phase(documents: int, work_root: Path, seed: int) -> dict:
    """Generate `documents` synthetic documents, run near_dedup on them and score the result."""
    import ray

    corpus_dir = work_root / f"corpus-{documents}"
    corpus_dir.mkdir(parents=True)
    started = time.perf_counter()
    parts, planted = write_corpus(corpus_dir, documents, seed)
    generate_seconds = time.perf_counter() - started
    megabytes = sum(os.path.getsize(path) for path in parts) / 1e6
    log.info("%d documents written in %.0f s (%.0f MB of Parquet)", documents, generate_seconds, megabytes)

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        with MemorySampler() as memory:
            started = time.perf_counter()
            result = near_dedup(parts, {}, str(work_root / f"work-{documents}"))
            seconds = time.perf_counter() - started
    finally:
        ray.shutdown()
    stats = json.loads((work_root / f"work-{documents}" / "near_dedup_stats.json").read_text())
    shutil.rmtree(corpus_dir)
    return {
        "documents": documents,
        "parquet_mb": round(megabytes, 1),
        "seconds": seconds,
        "peak_rss_gib": memory.peak_bytes / 2**30,
        "steps": stats["seconds"],
        "candidate_pairs": stats.get("candidate_pairs"),
        "confirmed_pairs": stats.get("confirmed_pairs"),
        "duplicates": stats["duplicates"],
        **score(result, planted, threshold=0.8),
    }


# Report.


def markdown(throughput: dict, phases: list[dict], command: str) -> str:
    lines = [
        f"Command: `{command}`",
        f"Date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "",
        f"Signatures on 1 core, {throughput['documents']:,} documents, {throughput['megabytes']} MB of text:",
        "",
        "| path | documents/s | MB/s |",
        "|---|---|---|",
        f"| pipeline.dedup, text to signature and band keys | {throughput['ours_docs_per_s']:,.0f} | {throughput['ours_mb_per_s']:.2f} |",
        f"| datasketch MinHash.bulk, text to signature (same normalization, Python 5-grams) | {throughput['datasketch_docs_per_s']:,.0f} | {throughput['datasketch_mb_per_s']:.2f} |",
        f"| ratio, text to signature | {throughput['ratio']:.1f}x | |",
        f"| pipeline.dedup, shingle hashes to signature | {throughput['ours_kernel_docs_per_s']:,.0f} | {throughput['ours_kernel_mb_per_s']:.2f} |",
        f"| datasketch MinHash.bulk, 5-gram bytes to signature | {throughput['datasketch_kernel_docs_per_s']:,.0f} | {throughput['datasketch_kernel_mb_per_s']:.2f} |",
        f"| ratio, shingles to signature | {throughput['kernel_ratio']:.1f}x | |",
        "",
        "| documents | wall s | peak RSS GiB | precision | recall | recall by planted Jaccard bin | planted negatives merged | duplicates | steps (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for phase in phases:
        steps = ", ".join(f"{name} {value:.0f}" for name, value in phase["steps"].items())
        bins = ", ".join(f"{name}+: {value:.3f}" for name, value in phase["recall_by_jaccard"].items())
        lines.append(
            f"| {phase['documents']:,} | {phase['seconds']:.0f} | {phase['peak_rss_gib']:.2f} | {phase['precision']:.4f} | "
            f"{phase['recall']:.4f} | {bins} | {phase['planted_negatives_merged']} of {phase['planted_negatives']} | "
            f"{phase['duplicates']:,} | {steps} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000], help="documents per phase run")
    parser.add_argument("--throughput-docs", type=int, default=3000, help="synthetic documents added to the real texts in part 1")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder (cc-text/)")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--json", type=Path, default=None, help="also write the raw figures to this JSON file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    throughput = signature_throughput(throughput_texts(args.data, args.throughput_docs), rounds=3)
    log.info("signatures: %s", json.dumps(throughput))
    work_root = args.work or Path(tempfile.mkdtemp(prefix="dedup-bench-"))
    phases = []
    for documents in args.sizes:
        phases.append(run_phase(documents, work_root, args.seed))
        log.info("phase: %s", json.dumps(phases[-1]))
    if args.json:
        args.json.write_text(json.dumps({"signatures": throughput, "phases": phases}, indent=2))
    print(markdown(throughput, phases, " ".join(["python"] + sys.argv)))


if __name__ == "__main__":
    main()
