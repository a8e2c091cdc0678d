"""MinHash signatures of shingle sets, LSH band keys and exact Jaccard similarity.

The permutations are datasketch's "affine32" scheme (datasketch >= 2.0, its default): a
shingle's 32-bit hash h is mixed with the MurmurHash3 32-bit finalizer, then permuted as
(a * h + b) mod 2^32 with odd a. `permutations(num_perm, seed)` draws (a, b) exactly as
`datasketch.MinHash(num_perm, seed, scheme="affine32")` does, so a datasketch MinHash fed
the same 32-bit hashes has the same hash values as our signature row.
"""

from __future__ import annotations

import numpy as np

from pipeline.dedup.shingles import fmix64

MAX_HASH32 = np.uint32(0xFFFFFFFF)
BAND_MULTIPLIER = np.uint64(0xD6E8FEB86659FD93)
# Shingle hashes per slice of the (num_perm, shingles) permutation matrix. With 128
# permutations a slice is 4 MiB, so it stays in cache between the multiply, the add and
# the min-reduce. On a 2-core x86 VM this ran twice as fast as 64 MiB slices.
SLICE_SHINGLES = 1 << 13


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw the (a, b) uint32 parameters of `num_perm` affine permutations, a odd."""
    generator = np.random.RandomState(seed)
    a = generator.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = generator.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def fmix32(values: np.ndarray) -> np.ndarray:
    """Apply the MurmurHash3 32-bit finalizer to a uint32 array."""
    values = values ^ (values >> np.uint32(16))
    values = values * np.uint32(0x85EBCA6B)
    values = values ^ (values >> np.uint32(13))
    values = values * np.uint32(0xC2B2AE35)
    return values ^ (values >> np.uint32(16))


def shingle_hash32(shingles: np.ndarray) -> np.ndarray:
    """Return the low 32 bits of 64-bit shingle hashes: the values MinHash permutes."""
    return (shingles & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def signatures(shingles: np.ndarray, offsets: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Compute the MinHash signature of every text: a (texts, num_perm) uint32 array.

    `shingles` contains the 64-bit shingle hashes of all texts back to back, text i owning
    shingles[offsets[i]:offsets[i + 1]]. A text without shingles keeps MAX_HASH32 in every
    column. The permutation matrix is built one slice of SLICE_SHINGLES rows at a time and
    min-reduced per text with np.minimum.reduceat, so memory stays bounded for any text length.
    """
    text_count = offsets.size - 1
    signature = np.full((text_count, a.size), MAX_HASH32, dtype=np.uint32)
    mixed = fmix32(shingle_hash32(shingles))

    for low in range(0, mixed.size, SLICE_SHINGLES):
        high = min(mixed.size, low + SLICE_SHINGLES)
        first = int(np.searchsorted(offsets, low, side="right")) - 1
        last = int(np.searchsorted(offsets, high, side="left"))  # texts first..last-1 overlap the slice
        texts = np.arange(first, last)
        starts = np.maximum(offsets[first:last], low)
        ends = np.minimum(offsets[first + 1 : last + 1], high)
        texts, starts = texts[ends > starts], starts[ends > starts]

        # (num_perm, slice) rather than (slice, num_perm): reduceat along the contiguous axis
        # is about 100 times faster with NumPy 2.
        permuted = np.multiply(a[:, None], mixed[None, low:high])  # wraps mod 2^32
        np.add(permuted, b[:, None], out=permuted)
        minimums = np.minimum.reduceat(permuted, starts - low, axis=1)  # (num_perm, texts in slice)
        signature[texts] = np.minimum(signature[texts], minimums.T)
    return signature


def band_keys(signature: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """Hash each band of `rows` signature values to one uint64 key: a (texts, bands) array.

    The band index is mixed into the key, so equal values in different bands never share a
    key. Different bands collide only by a 64-bit hash collision, which verification or at
    worst one extra candidate pair absorbs.
    """
    if bands * rows > signature.shape[1]:
        raise ValueError(f"bands * rows = {bands * rows} exceeds num_perm = {signature.shape[1]}")
    grouped = signature[:, : bands * rows].reshape(signature.shape[0], bands, rows)  # (texts, bands, rows)
    keys = np.broadcast_to(fmix64(np.arange(1, bands + 1, dtype=np.uint64)), grouped.shape[:2]).copy()
    for row in range(rows):
        keys = keys * BAND_MULTIPLIER + grouped[:, :, row].astype(np.uint64)
    return fmix64(keys)


def jaccard(left: np.ndarray, right: np.ndarray) -> float:
    """Return |A ∩ B| / |A ∪ B| of two sorted arrays of unique values (0.0 when both are empty)."""
    if left.size == 0 and right.size == 0:
        return 0.0
    shared = np.intersect1d(left, right, assume_unique=True).size
    return shared / (left.size + right.size - shared)


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """Return the probability that two sets with this Jaccard share at least one band."""
    return 1.0 - (1.0 - similarity**rows) ** bands
