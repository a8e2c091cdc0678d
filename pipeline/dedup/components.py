"""Distributed connected components by alternating large-star and small-star rounds.

The algorithm is from Kiveris et al., "Connected Components in MapReduce and Beyond"
(SoCC 2014). Each round groups edges by node with one hash-partitioned shuffle of Ray
tasks, so no task receives more than its partition of the edges. At the fixed point every
component is a star whose center is its smallest node id, which becomes the label.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import ray

from pipeline.dedup.shingles import fmix64
from pipeline.dedup.shuffle import column, concat_columns, split_by_partition, submit_all

logger = logging.getLogger(__name__)

EDGE_COLUMNS = ("src", "dst")
EDGE_DTYPES = (np.int64, np.int64)
CHECKSUM_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


def as_returns(outputs: list):
    """Return a task's outputs as Ray expects for num_returns == len(outputs)."""
    return outputs[0] if len(outputs) == 1 else outputs


def unique_edges(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort edges by (src, dst) and drop repeats and self-loops."""
    order = np.lexsort((dst, src))
    src, dst = src[order], dst[order]
    keep = src != dst
    keep[1:] &= (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
    return src[keep], dst[keep]


def group_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Return the index where each run of equal values starts in a sorted array."""
    if sorted_keys.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])


def both_directions(src: np.ndarray, dst: np.ndarray, num_partitions: int) -> list[dict[str, np.ndarray]]:
    """Partition undirected edges for a large-star round: each edge once from each end."""
    all_src = np.concatenate([src, dst])
    all_dst = np.concatenate([dst, src])
    return split_by_partition(all_src, {"src": all_src, "dst": all_dst}, num_partitions)


@ray.remote
def large_star(num_partitions: int, *pieces: dict[str, np.ndarray]):
    """Link every neighbor larger than u to the smallest node of u's closed neighborhood.

    Input: edges keyed by `src`, both directions present. Output: edges (v, m) with v > m,
    partitioned by v for the small-star round.
    """
    edges = concat_columns(pieces, EDGE_COLUMNS, EDGE_DTYPES)
    src, dst = unique_edges(edges["src"], edges["dst"])
    starts = group_starts(src)
    sizes = np.diff(np.r_[starts, src.size])
    center = np.repeat(np.minimum(src[starts], dst[starts]), sizes)  # dst is sorted within a group
    larger = dst > src
    out_src, out_dst = dst[larger], center[larger]
    return as_returns(split_by_partition(out_src, {"src": out_src, "dst": out_dst}, num_partitions))


@ray.remote
def small_star(num_partitions: int, *pieces: dict[str, np.ndarray]):
    """Link u and its smaller neighbors to the smallest of them.

    Input: edges (u, v) with u > v, partitioned by u. Output: the new edges in both
    directions for the next large-star round, then (edge count, checksum) of the input set.
    """
    edges = concat_columns(pieces, EDGE_COLUMNS, EDGE_DTYPES)
    src, dst = unique_edges(edges["src"], edges["dst"])
    checksum = int(np.sum(fmix64(src.astype(np.uint64) * CHECKSUM_MULTIPLIER ^ dst.astype(np.uint64)), dtype=np.uint64))

    starts = group_starts(src)
    sizes = np.diff(np.r_[starts, src.size])
    center = np.repeat(dst[starts], sizes)  # every dst < src, and dst is sorted within a group
    members = dst != center
    out_src = np.concatenate([dst[members], src[starts]])
    out_dst = np.concatenate([center[members], dst[starts]])
    return both_directions(out_src, out_dst, num_partitions) + [(int(src.size), checksum)]


def connected_components(
    partitions: Sequence[Sequence[ray.ObjectRef]],
    num_partitions: int,
    max_in_flight: int | None,
    max_rounds: int = 200,
) -> tuple[list[list[ray.ObjectRef]], int]:
    """Run large-star/small-star rounds until the edge set stops changing.

    `partitions[k]` lists the refs of partition k of the undirected edges, in the layout
    `both_directions` produces. Returns the final star edges in the same layout and the
    number of rounds. Raises RuntimeError when `max_rounds` rounds do not converge.
    """
    previous = None
    for round_number in range(1, max_rounds + 1):
        large = submit_all(large_star, [(num_partitions, *partitions[k]) for k in range(num_partitions)], num_partitions, max_in_flight)
        small = submit_all(small_star, [(num_partitions, *column(large, k)) for k in range(num_partitions)], num_partitions + 1, max_in_flight)
        stats = ray.get(column(small, num_partitions))
        fingerprint = (sum(count for count, _ in stats), sum(checksum for _, checksum in stats) % (1 << 64))
        partitions = [column(small, k) for k in range(num_partitions)]
        logger.info("connected components round %d: %d edges", round_number, fingerprint[0])
        if fingerprint == previous:
            return partitions, round_number
        previous = fingerprint
    raise RuntimeError(f"connected components did not converge in {max_rounds} rounds; raise max_rounds")


def star_labels(pieces: Sequence[dict[str, np.ndarray]], low: int, high: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (node, label) for nodes in [low, high) from converged star edges.

    At the fixed point a node's only neighbor is its center, or it is the center and all
    neighbors are larger, so min(node, smallest neighbor) is the component's smallest node.
    """
    edges = concat_columns(pieces, EDGE_COLUMNS, EDGE_DTYPES)
    inside = (edges["src"] >= low) & (edges["src"] < high)
    src, dst = unique_edges(edges["src"][inside], edges["dst"][inside])
    starts = group_starts(src)
    return src[starts], np.minimum(src[starts], dst[starts])
