"""Text normalization and word n-gram shingles as 64-bit hashes, for whole batches at once.

Every step works on Arrow string arrays and NumPy arrays, so hashing a batch costs a few
passes over its bytes and no Python loop per word or per shingle.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Odd 64-bit multipliers for the polynomial string and n-gram hashes.
BYTE_MULTIPLIER = np.uint64(0x100000001B3)
WORD_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
LENGTH_MULTIPLIER = np.uint64(0xC2B2AE3D27D4EB4F)
EMPTY_STRING_HASH = np.uint64(0)


def fmix64(values: np.ndarray) -> np.ndarray:
    """Apply the MurmurHash3 64-bit finalizer, a bijection that spreads every input bit."""
    values = values ^ (values >> np.uint64(33))
    values = values * np.uint64(0xFF51AFD7ED558CCD)
    values = values ^ (values >> np.uint64(33))
    values = values * np.uint64(0xC4CEB9FE1A85EC53)
    return values ^ (values >> np.uint64(33))


def normalize_text(texts: pa.Array | pa.ChunkedArray, digits_to_zero: bool = False) -> pa.Array:
    """Lowercase, strip accents (NFD, then drop combining marks) and turn punctuation into spaces.

    Punctuation and symbols (Unicode categories P and S) become spaces, so "end.Start" is
    two words. Null texts become empty strings. Whitespace is collapsed by the word split.
    """
    texts = pc.fill_null(texts, "")
    texts = pc.utf8_normalize(texts, "NFD")
    texts = pc.utf8_lower(texts)
    texts = pc.replace_substring_regex(texts, r"\p{Mn}+", "")
    texts = pc.replace_substring_regex(texts, r"[\p{P}\p{S}]+", " ")
    if digits_to_zero:
        texts = pc.replace_substring_regex(texts, r"\d", "0")
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    return texts


def string_offsets(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Return the byte offsets (int64, n + 1 values) and the UTF-8 bytes of a string array."""
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    if strings.type == pa.string():
        offset_type = np.int32
    elif strings.type == pa.large_string():
        offset_type = np.int64
    else:
        raise TypeError(f"expected a string array, got {strings.type}")
    count = len(strings)
    _, offsets_buffer, data_buffer = strings.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[strings.offset : strings.offset + count + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    return offsets.astype(np.int64), data


def hash_strings(strings: pa.Array) -> np.ndarray:
    """Hash every string of an Arrow array to a uint64, vectorized over all bytes.

    The hash is a polynomial over the bytes modulo 2^64, mixed with the byte length and
    finished with fmix64. Empty strings hash to EMPTY_STRING_HASH.
    """
    offsets, data = string_offsets(strings)
    count = len(offsets) - 1
    hashes = np.full(count, EMPTY_STRING_HASH, dtype=np.uint64)
    lengths = np.diff(offsets)
    nonempty = np.flatnonzero(lengths > 0)
    if nonempty.size == 0:
        return hashes

    starts, sizes = offsets[:-1][nonempty], lengths[nonempty]
    segment_starts = np.r_[0, np.cumsum(sizes)[:-1]]  # (strings,) where each string's bytes start below
    byte_index = np.arange(int(sizes.sum()))
    if starts[-1] - starts[0] == segment_starts[-1]:
        string_bytes = data[starts[0] : starts[0] + byte_index.size]
    else:  # a sliced array or empty strings in between: gather the referenced bytes only
        string_bytes = data[np.repeat(starts - segment_starts, sizes) + byte_index]
    exponents = np.repeat(segment_starts + sizes - 1, sizes) - byte_index  # distance from the last byte
    powers = powers_of(BYTE_MULTIPLIER, int(sizes.max()))
    contributions = string_bytes.astype(np.uint64) * powers[exponents]
    polynomial = np.add.reduceat(contributions, segment_starts)
    hashes[nonempty] = fmix64(polynomial ^ (sizes.astype(np.uint64) * LENGTH_MULTIPLIER))
    return hashes


_POWERS: dict[int, np.ndarray] = {}


def powers_of(multiplier: np.uint64, count: int) -> np.ndarray:
    """Return multiplier**0 .. multiplier**(count - 1) modulo 2^64 (cached, grown on demand)."""
    key = int(multiplier)
    cached = _POWERS.get(key)
    if cached is None or cached.size < count:
        size = max(count, 64, 0 if cached is None else 2 * cached.size)
        cached = np.cumprod(np.r_[np.uint64(1), np.full(size - 1, multiplier, dtype=np.uint64)], dtype=np.uint64)
        _POWERS[key] = cached
    return cached[:count]


def hash_words(words: pa.Array) -> np.ndarray:
    """Hash words through a dictionary encoding, so each distinct word is hashed once."""
    encoded = pc.dictionary_encode(words)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    return hash_strings(encoded.dictionary)[encoded.indices.to_numpy(zero_copy_only=False)]


def split_words(normalized: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Split normalized texts on whitespace; return the words and per-text word offsets (int64)."""
    lists = pc.utf8_split_whitespace(normalized)
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    words = lists.flatten()
    list_lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False)
    word_offsets, _ = string_offsets(words)
    nonempty = np.diff(word_offsets) > 0
    text_of_word = np.repeat(np.arange(len(lists)), list_lengths)
    counts = np.bincount(text_of_word[nonempty], minlength=len(lists))
    words = words.filter(pa.array(nonempty))
    return words, np.r_[0, np.cumsum(counts)].astype(np.int64)


def ngram_hashes(word_hashes: np.ndarray, word_offsets: np.ndarray, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Hash every word n-gram of every text; return the shingle hashes and per-text offsets.

    A text with fewer than `ngram` words has no shingles, so near-dedup never pairs it;
    identical short texts are the exact-dedup step's job. Shingles keep text order and
    may repeat within a text.
    """
    counts = np.diff(word_offsets)
    window_count = max(word_hashes.size - ngram + 1, 0)

    windows = np.zeros(window_count, dtype=np.uint64)
    for j in range(ngram):
        windows = windows * WORD_MULTIPLIER + word_hashes[j : j + window_count]
    text_of_word = np.repeat(np.arange(counts.size), counts)
    window_ends = word_offsets[1:][text_of_word[:window_count]]
    windows = windows[np.arange(window_count) + ngram <= window_ends]  # drop windows across texts

    shingle_counts = np.maximum(counts - ngram + 1, 0)
    return fmix64(windows), np.r_[0, np.cumsum(shingle_counts)].astype(np.int64)


def text_shingles(texts: pa.Array | pa.ChunkedArray, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalize texts and return their word n-gram hashes (uint64) with per-text offsets."""
    words, word_offsets = split_words(normalize_text(texts))
    return ngram_hashes(hash_words(words), word_offsets, ngram)


def unique_per_text(values: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort and deduplicate the values of each text (a shingle set); return values and offsets."""
    counts = np.diff(offsets)
    text_of_value = np.repeat(np.arange(counts.size), counts)
    order = np.lexsort((values, text_of_value))
    values, text_of_value = values[order], text_of_value[order]
    first = np.ones(values.size, dtype=bool)
    first[1:] = (values[1:] != values[:-1]) | (text_of_value[1:] != text_of_value[:-1])
    kept_counts = np.bincount(text_of_value[first], minlength=counts.size)
    return values[first], np.r_[0, np.cumsum(kept_counts)].astype(np.int64)
