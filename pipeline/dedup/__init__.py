"""Near-duplicate (MinHash LSH) and exact-line deduplication across a whole run, on Ray."""

from pipeline.dedup.near import near_dedup

__all__ = ["near_dedup"]
