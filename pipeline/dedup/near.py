"""MinHash LSH near-duplicate detection over Parquet parts, as a pipeline of Ray task steps.

Steps, each a set of Ray tasks with a hash-partitioned shuffle between them:
1. sign: per work unit, shingle and sign every document and emit one (band key, node)
   row per band, partitioned by band key.
2. bucket: per partition, group rows by band key. A bucket of k documents gives the k - 1
   candidate edges from its smallest node to the others.
3. verify (optional): recompute the shingle sets of candidate documents only and keep an
   edge when the exact Jaccard of its two sets reaches the threshold.
4. components: large-star/small-star rounds label every clustered node with its
   component's smallest node.
5. survivors: per component, the document with the earliest date, then the smallest id,
   survives; the others are duplicates.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray

from pipeline.dedup import minhash
from pipeline.dedup.components import (
    as_returns,
    both_directions,
    connected_components,
    group_starts,
    star_labels,
    unique_edges,
)
from pipeline.dedup.shingles import text_shingles, unique_per_text
from pipeline.dedup.shuffle import (
    WorkUnit,
    column,
    concat_columns,
    node_ids,
    partition_of,
    plan_units,
    split_by_partition,
    submit_all,
)

logger = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "ngram": 5,
    "num_perm": 128,
    "bands": 16,
    "rows": 8,
    "threshold": 0.8,
    "verify": True,
    "seed": 1,
    "num_partitions": 16,
    "rows_per_task": 20000,
    "batch_rows": 2000,
    "concurrency": None,
}
RESULT_SCHEMA = pa.schema(
    [("id", pa.string()), ("dedup_cluster", pa.string()), ("duplicate", pa.bool_()), ("duplicate_of", pa.string())]
)
STATS_FILE = "near_dedup_stats.json"


def resolve_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """Overlay `config` on DEFAULTS and check the values; raise ValueError naming the key."""
    settings = dict(DEFAULTS)
    for key, value in (config or {}).items():
        if key not in DEFAULTS:
            raise ValueError(f"unknown dedup.minhash key '{key}'; known keys: {', '.join(DEFAULTS)}")
        if value is not None or key == "concurrency":
            settings[key] = value
    if settings["bands"] * settings["rows"] > settings["num_perm"]:
        raise ValueError(
            f"dedup.minhash.bands * rows = {settings['bands'] * settings['rows']} exceeds num_perm = {settings['num_perm']}"
        )
    for key in ("ngram", "num_perm", "bands", "rows", "num_partitions", "rows_per_task", "batch_rows"):
        if int(settings[key]) < 1:
            raise ValueError(f"dedup.minhash.{key} must be at least 1, got {settings[key]!r}")
    if not 0.0 < float(settings["threshold"]) <= 1.0:
        raise ValueError(f"dedup.minhash.threshold must be in (0, 1], got {settings['threshold']!r}")
    return settings


# Step 1: signatures and band keys.


@ray.remote
def sign_unit(unit: WorkUnit, settings: dict[str, Any]):
    """Emit (band key, node) rows partitioned by key, then the unit's (id, date) table and counts."""
    a, b = minhash.permutations(settings["num_perm"], settings["seed"])
    keys, nodes, metas = [], [], []
    documents = empty = text_bytes = 0
    for batch in unit.read_batches(["id", "date", "text"], settings["batch_rows"]):
        batch_nodes = node_ids(unit, documents, batch.num_rows)
        documents += batch.num_rows
        text = batch.column("text")
        text_bytes += int(pc.sum(pc.binary_length(text.cast(pa.binary()))).as_py() or 0)
        metas.append(pa.table({"id": batch.column("id").cast(pa.string()), "date": batch.column("date").cast(pa.string())}))

        if not settings["enabled"]:
            continue
        shingles, offsets = text_shingles(text, settings["ngram"])
        signature = minhash.signatures(shingles, offsets, a, b)
        band_keys = minhash.band_keys(signature, settings["bands"], settings["rows"])  # (docs, bands)
        has_shingles = np.diff(offsets) > 0
        empty += int((~has_shingles).sum())
        keys.append(band_keys[has_shingles].ravel())
        nodes.append(np.repeat(batch_nodes[has_shingles], settings["bands"]))

    key = np.concatenate(keys + [np.zeros(0, np.uint64)])
    node = np.concatenate(nodes + [np.zeros(0, np.int64)])
    partitions = split_by_partition(key, {"key": key, "node": node}, settings["num_partitions"])
    meta = pa.concat_tables(metas) if metas else pa.table({"id": pa.array([], pa.string()), "date": pa.array([], pa.string())})
    counts = {"documents": documents, "documents_without_shingles": empty, "text_bytes": text_bytes}
    return partitions + [meta, counts]


# Step 2: buckets to candidate edges.


@ray.remote
def bucket_edges(settings: dict[str, Any], *pieces: dict[str, np.ndarray]):
    """Group rows by band key and emit a star of edges from each bucket's smallest node.

    Returns the edges partitioned for the next step, then the sorted unique candidate
    nodes, then the number of edges before dropping repeats. The edges are partitioned by
    source node for verification, or in both directions for components when verification
    is off. A pair that shares several bands counts once per band in the number.
    """
    rows = concat_columns(pieces, ("key", "node"), (np.uint64, np.int64))
    order = np.lexsort((rows["node"], rows["key"]))
    key, node = rows["key"][order], rows["node"][order]
    starts = group_starts(key)
    sizes = np.diff(np.r_[starts, key.size])
    # NOTE: with verification on, if a bucket's smallest node fails verification against
    # the others, their mutual pairs are lost in this bucket and found only via another band.
    smallest = np.repeat(node[starts], sizes)  # nodes are sorted within a bucket
    member = node != smallest
    src, dst = unique_edges(smallest[member], node[member])

    num_partitions = settings["num_partitions"]
    if settings["verify"]:
        outputs = split_by_partition(src, {"src": src, "dst": dst}, num_partitions)
    else:
        outputs = both_directions(src, dst, num_partitions)
    candidates = np.unique(np.concatenate([src, dst]))
    return outputs + [candidates, int(member.sum())]


# Step 3: verification by exact Jaccard.


def gather_ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Return the indices of the ranges [start, start + count) back to back."""
    total = int(counts.sum())
    range_starts = np.r_[0, np.cumsum(counts)[:-1]]
    return np.repeat(starts - range_starts, counts) + np.arange(total)


@ray.remote
def shingle_unit(unit: WorkUnit, settings: dict[str, Any], *candidate_pieces: np.ndarray):
    """Compute the shingle sets of this unit's candidate documents, partitioned by node."""
    num_partitions = settings["num_partitions"]
    candidates = np.concatenate(list(candidate_pieces) + [np.zeros(0, np.int64)])
    low = unit.first_node
    nodes = np.unique(candidates[(candidates >= low) & (candidates < low + unit.num_rows)])
    if nodes.size == 0:
        empty = {"node": np.zeros(0, np.int64), "count": np.zeros(0, np.int64), "values": np.zeros(0, np.uint64)}
        return as_returns([empty] * num_partitions)

    table = unit.read_rows(nodes - low, ["text"])
    shingles, offsets = unique_per_text(*text_shingles(table.column("text"), settings["ngram"]))
    counts = np.diff(offsets)
    partition = partition_of(nodes, num_partitions)
    outputs = []
    for k in range(num_partitions):
        chosen = np.flatnonzero(partition == k)
        outputs.append({
            "node": nodes[chosen],
            "count": counts[chosen],
            "values": shingles[gather_ranges(offsets[chosen], counts[chosen])],
        })
    return as_returns(outputs)


def index_sets(pieces: Sequence[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merge shingle-set pieces; return nodes sorted, their value starts, counts, and the values."""
    merged = concat_columns(pieces, ("node", "count", "values"), (np.int64, np.int64, np.uint64))
    piece_starts = np.r_[0, np.cumsum(merged["count"])[:-1]].astype(np.int64)
    order = np.argsort(merged["node"], kind="stable")
    return merged["node"][order], piece_starts[order], merged["count"][order], merged["values"]


def lookup_sets(nodes: np.ndarray, index: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Return the (starts, counts) of the sets of `nodes`; raise KeyError if one is missing."""
    known, starts, counts, _ = index
    position = np.searchsorted(known, nodes)
    position = np.minimum(position, max(known.size - 1, 0))
    if nodes.size and (known.size == 0 or np.any(known[position] != nodes)):
        raise KeyError("a candidate node has no shingle set; the shingle step and the edges disagree")
    return starts[position], counts[position]


@ray.remote
def attach_source_sets(settings: dict[str, Any], edge_piece_count: int, *pieces: dict[str, np.ndarray]):
    """Join edges with their source's shingle set and repartition them by destination."""
    edges = concat_columns(pieces[:edge_piece_count], ("src", "dst"), (np.int64, np.int64))
    src, dst = unique_edges(edges["src"], edges["dst"])
    index = index_sets(pieces[edge_piece_count:])
    starts, counts = lookup_sets(src, index)
    values = index[3]

    partition = partition_of(dst, settings["num_partitions"])
    outputs = []
    for k in range(settings["num_partitions"]):
        chosen = np.flatnonzero(partition == k)
        outputs.append({
            "src": src[chosen],
            "dst": dst[chosen],
            "count": counts[chosen],
            "values": values[gather_ranges(starts[chosen], counts[chosen])],
        })
    return as_returns(outputs)


def edge_jaccards(source_counts, source_values, target_starts, target_counts, target_values) -> np.ndarray:
    """Compute the exact Jaccard of each edge's two sets, vectorized over all edges.

    Both sets of an edge are sorted and unique, so after sorting their union by (edge,
    value) each shared value appears twice in a row.
    """
    edge_count = source_counts.size
    target_flat = target_values[gather_ranges(target_starts, target_counts)]
    edge_of_value = np.concatenate([np.repeat(np.arange(edge_count), source_counts), np.repeat(np.arange(edge_count), target_counts)])
    values = np.concatenate([source_values, target_flat])
    order = np.lexsort((values, edge_of_value))
    values, edge_of_value = values[order], edge_of_value[order]
    repeated = (values[1:] == values[:-1]) & (edge_of_value[1:] == edge_of_value[:-1])
    shared = np.bincount(edge_of_value[1:][repeated], minlength=edge_count)
    union = source_counts + target_counts - shared
    return np.where(union > 0, shared / np.maximum(union, 1), 0.0)


@ray.remote
def verify_edges(settings: dict[str, Any], edge_piece_count: int, *pieces: dict[str, np.ndarray]):
    """Keep the edges whose exact Jaccard reaches the threshold, partitioned for components.

    Returns the confirmed edges in both directions, then (candidate count, confirmed count).
    """
    edges = concat_columns(pieces[:edge_piece_count], ("src", "dst", "count", "values"), (np.int64, np.int64, np.int64, np.uint64))
    index = index_sets(pieces[edge_piece_count:])
    target_starts, target_counts = lookup_sets(edges["dst"], index)

    confirmed = np.zeros(edges["src"].size, dtype=bool)
    chunk_edges = 20000  # bounds the sort below to a few million values
    value_starts = np.r_[0, np.cumsum(edges["count"])].astype(np.int64)
    for low in range(0, edges["src"].size, chunk_edges):
        high = min(edges["src"].size, low + chunk_edges)
        similarity = edge_jaccards(
            edges["count"][low:high],
            edges["values"][value_starts[low] : value_starts[high]],
            target_starts[low:high],
            target_counts[low:high],
            index[3],
        )
        confirmed[low:high] = similarity >= settings["threshold"]

    src, dst = edges["src"][confirmed], edges["dst"][confirmed]
    return both_directions(src, dst, settings["num_partitions"]) + [(int(confirmed.size), int(confirmed.sum()))]


# Step 5: survivors.


@ray.remote
def label_unit(unit: WorkUnit, settings: dict[str, Any], meta: pa.Table, *edge_pieces: dict[str, np.ndarray]):
    """Attach (label, date, id) to this unit's clustered nodes, partitioned by label."""
    low = unit.first_node
    nodes, labels = star_labels(edge_pieces, low, low + unit.num_rows)
    rows = meta.take(pa.array(nodes - low, pa.int64()))
    table = pa.table({"node": nodes, "label": labels, "date": rows.column("date"), "id": rows.column("id")})
    partition = partition_of(labels, settings["num_partitions"])
    return as_returns([table.filter(pa.array(partition == k)) for k in range(settings["num_partitions"])])


@ray.remote
def choose_survivors(*tables: pa.Table) -> dict[str, np.ndarray]:
    """Pick each component's survivor (earliest date, then smallest id); map node to survivor."""
    # Arrow sorts nulls last, so a document without a date never beats one with a date.
    table = pa.concat_tables(tables).sort_by([("label", "ascending"), ("date", "ascending"), ("id", "ascending")])
    labels = table.column("label").to_numpy()
    nodes = table.column("node").to_numpy()
    starts = group_starts(labels)
    survivor = np.repeat(nodes[starts], np.diff(np.r_[starts, labels.size]))
    return {"node": nodes, "survivor": survivor}


# The whole phase.


def near_dedup(parts: list[str], config: dict[str, Any], work_dir: str) -> pa.Table:
    """Find near-duplicate documents across `parts`; return one row per document.

    Columns: `id`, `dedup_cluster` (the id of the cluster's survivor, or the document's
    own id when it has no near-duplicate), `duplicate` (True: drop it) and `duplicate_of`
    (the survivor's id for duplicates, else null). Rows follow the order of `parts` and
    of the rows inside each part. Counts and step timings go to work_dir/near_dedup_stats.json.
    """
    settings = resolve_config(config)
    if not ray.is_initialized():
        raise RuntimeError("near_dedup runs on an initialized Ray; call ray.init() first")
    os.makedirs(work_dir, exist_ok=True)
    num_partitions, in_flight = settings["num_partitions"], settings["concurrency"]
    units = plan_units(parts, settings["rows_per_task"])
    stats: dict[str, Any] = {"parts": len(parts), "tasks_per_step": len(units), "settings": settings, "seconds": {}}
    clock = time.perf_counter()

    signed = submit_all(sign_unit, [(unit, settings) for unit in units], num_partitions + 2, in_flight)
    metas = column(signed, num_partitions)
    counts = ray.get(column(signed, num_partitions + 1))
    stats["documents"] = sum(count["documents"] for count in counts)
    stats["documents_without_shingles"] = sum(count["documents_without_shingles"] for count in counts)
    stats["text_bytes"] = sum(count["text_bytes"] for count in counts)
    clock = lap(stats, "sign", clock)

    if not settings["enabled"]:
        return assemble(units, metas, {}, stats, work_dir)

    buckets = submit_all(
        bucket_edges, [(settings, *column(signed, k)) for k in range(num_partitions)], num_partitions + 2, in_flight
    )
    stats["band_matches"] = sum(ray.get(column(buckets, num_partitions + 1)))
    clock = lap(stats, "bucket", clock)

    edges = [column(buckets, k) for k in range(num_partitions)]
    if settings["verify"]:
        edges = verify(units, settings, buckets, stats)
        clock = lap(stats, "verify", clock)

    final_edges, stats["components_rounds"] = connected_components(edges, num_partitions, in_flight)
    clock = lap(stats, "components", clock)

    # NOTE: every label task reads all final star edges and keeps its own node range. The
    # step reads units x clustered edges in all, which is cheap only while few documents cluster.
    star_edges = [ref for k in range(num_partitions) for ref in final_edges[k]]
    labelled = submit_all(
        label_unit, [(unit, settings, metas[unit.index], *star_edges) for unit in units], num_partitions, in_flight
    )
    survivors = submit_all(choose_survivors, [tuple(column(labelled, k)) for k in range(num_partitions)], 1, in_flight)
    mapping = [ray.get(refs[0]) for refs in survivors]
    lap(stats, "survivors", clock)
    return assemble(units, metas, mapping, stats, work_dir)


def verify(units: list[WorkUnit], settings: dict[str, Any], buckets: list[list[ray.ObjectRef]], stats: dict[str, Any]) -> list[list[ray.ObjectRef]]:
    """Run the verification step on the bucket edges; return confirmed edges per partition."""
    num_partitions, in_flight = settings["num_partitions"], settings["concurrency"]
    candidate_refs = column(buckets, num_partitions)
    sets = submit_all(shingle_unit, [(unit, settings, *candidate_refs) for unit in units], num_partitions, in_flight)
    attached = submit_all(
        attach_source_sets,
        [(settings, len(buckets), *column(buckets, k), *column(sets, k)) for k in range(num_partitions)],
        num_partitions,
        in_flight,
    )
    verified = submit_all(
        verify_edges,
        [(settings, len(attached), *column(attached, k), *column(sets, k)) for k in range(num_partitions)],
        num_partitions + 1,
        in_flight,
    )
    counts = ray.get(column(verified, num_partitions))
    stats["candidate_pairs"] = sum(candidates for candidates, _ in counts)
    stats["confirmed_pairs"] = sum(confirmed for _, confirmed in counts)
    return [column(verified, k) for k in range(num_partitions)]


def assemble(units: list[WorkUnit], metas: list[ray.ObjectRef], mappings: list[dict[str, np.ndarray]], stats: dict[str, Any], work_dir: str) -> pa.Table:
    """Build the result table from every unit's ids and the node-to-survivor mapping."""
    ids = pa.concat_arrays([table.column("id").combine_chunks() for table in ray.get(metas)]) if units else pa.array([], pa.string())
    unit_first_nodes = np.array([unit.first_node for unit in units], dtype=np.int64)
    unit_offsets = np.r_[0, np.cumsum([unit.num_rows for unit in units])].astype(np.int64)

    def positions(nodes: np.ndarray) -> np.ndarray:
        unit = np.searchsorted(unit_first_nodes, nodes, side="right") - 1
        return unit_offsets[unit] + nodes - unit_first_nodes[unit]

    cluster = np.arange(len(ids), dtype=np.int64)
    for mapping in mappings:
        cluster[positions(mapping["node"])] = positions(mapping["survivor"])
    duplicate = cluster != np.arange(len(ids))
    cluster_ids = ids.take(pa.array(cluster))
    duplicate_of = pc.if_else(pa.array(duplicate), cluster_ids, pa.scalar(None, pa.string()))
    result = pa.Table.from_arrays([ids, cluster_ids, pa.array(duplicate), duplicate_of], schema=RESULT_SCHEMA)

    stats["clustered_documents"] = int(sum(mapping["node"].size for mapping in mappings))
    stats["clusters"] = int(sum(np.unique(mapping["survivor"]).size for mapping in mappings))
    stats["duplicates"] = int(duplicate.sum())
    with open(os.path.join(work_dir, STATS_FILE), "w", encoding="utf-8") as handle:
        json.dump(stats, handle, indent=2, default=str)
    logger.info(
        "near dedup: %d documents, %d clusters, %d duplicates", stats["documents"], stats["clusters"], stats["duplicates"]
    )
    return result


def lap(stats: dict[str, Any], step: str, start: float) -> float:
    """Record the seconds since `start` for `step`, log them, and return the current time."""
    now = time.perf_counter()
    stats["seconds"][step] = round(now - start, 3)
    logger.info("near dedup step %s: %.1f s", step, now - start)
    return now
