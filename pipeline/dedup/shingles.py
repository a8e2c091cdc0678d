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
INVERSE_BYTE_MULTIPLIER = np.uint64(pow(int(BYTE_MULTIPLIER), -1, 1 << 64))


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
    return hash_byte_ranges(data, offsets[:-1], np.diff(offsets))


def hash_byte_ranges(data: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Hash the byte ranges data[starts[i] : starts[i] + sizes[i]] as `hash_strings` hashes strings.

    The ranges may come in any order and may overlap. The cost is a few passes over the
    bytes from the first range start to the last range end, plus a few per range.
    """
    hashes = np.full(starts.size, EMPTY_STRING_HASH, dtype=np.uint64)
    nonempty = np.flatnonzero(sizes > 0)
    if nonempty.size == 0:
        return hashes

    # The polynomial of bytes b[s] .. b[e - 1] is sum b[k] * M^(e - 1 - k), which equals
    # M^(e - 1) * (P[e] - P[s]) for the prefix sums P[j] = sum over k < j of b[k] * M^-k.
    # M is odd, so its inverse modulo 2^64 exists, and all arithmetic wraps modulo 2^64.
    starts, sizes = starts[nonempty], sizes[nonempty]
    base = int(starts.min())
    first = starts - base
    last = first + sizes
    span = data[base : base + int(last.max())]
    prefix = np.zeros(span.size + 1, dtype=np.uint64)
    np.multiply(span, powers_of(INVERSE_BYTE_MULTIPLIER, span.size), out=prefix[1:])
    np.cumsum(prefix[1:], out=prefix[1:])
    polynomial = (prefix[last] - prefix[first]) * powers_of(BYTE_MULTIPLIER, span.size)[last - 1]
    hashes[nonempty] = fmix64(polynomial ^ (sizes.astype(np.uint64) * LENGTH_MULTIPLIER))
    return hashes


# Power tables up to this many entries (8 MiB each) stay cached between calls. Longer ones
# are computed for the call and dropped, so one huge batch does not pin its memory.
MAX_CACHED_POWERS = 1 << 20
_POWERS: dict[int, np.ndarray] = {}


def powers_of(multiplier: np.uint64, count: int) -> np.ndarray:
    """Return multiplier**0 .. multiplier**(count - 1) modulo 2^64 (cached up to MAX_CACHED_POWERS)."""
    key = int(multiplier)
    cached = _POWERS.get(key)
    if cached is not None and cached.size >= count:
        return cached[:count]

    size = max(count, 64, 0 if cached is None else min(2 * cached.size, MAX_CACHED_POWERS))
    powers = np.full(size, multiplier, dtype=np.uint64)
    powers[0] = 1
    np.cumprod(powers, out=powers)
    if size <= MAX_CACHED_POWERS:
        _POWERS[key] = powers
    return powers[:count]


def hash_words(words: pa.Array) -> np.ndarray:
    """Hash words through a dictionary encoding, so each distinct word is hashed once."""
    encoded = pc.dictionary_encode(words)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    return hash_strings(encoded.dictionary)[encoded.indices.to_numpy(zero_copy_only=False)]


def split_words(normalized: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Split normalized texts on whitespace; return the words and per-text word offsets (int64).

    NOTE: pc.utf8_split_whitespace in pyarrow 26 sometimes keeps the trailing whitespace in
    the last word of a string that ends with whitespace, and differs between runs on the
    same input. `text_word_hashes` splits with `find_words` instead.
    """
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


# Whitespace is what Python's str.split() and pc.utf8_split_whitespace split at (checked
# with pyarrow 26): ASCII_WHITESPACE bytes, U+0085 and the Unicode separators (category Z).
# Splitting UTF-8 at ASCII bytes is safe because they never occur inside a multi-byte character.
ASCII_WHITESPACE = np.zeros(256, dtype=bool)
ASCII_WHITESPACE[[0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F, 0x20]] = True
# First bytes of the UTF-8 encodings of the non-ASCII whitespace code points.
WHITESPACE_LEAD_BYTE = np.zeros(256, dtype=bool)
WHITESPACE_LEAD_BYTE[[0xC2, 0xE1, 0xE2, 0xE3]] = True

# `normalize_text` of an ASCII string, byte by byte, up to runs of spaces: lowercase letters
# and turn punctuation and symbols (all 32 printable ASCII characters that are neither
# letters, digits nor space) into spaces.
ASCII_NORMALIZED = np.arange(256, dtype=np.uint8)
ASCII_NORMALIZED[ord("A") : ord("Z") + 1] += ord("a") - ord("A")
ASCII_NORMALIZED[[ord(c) for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"]] = ord(" ")


def whitespace_mask(data: np.ndarray, unicode_whitespace: bool) -> np.ndarray:
    """Mark the whitespace bytes of UTF-8 data: ASCII only, or also non-ASCII whitespace."""
    # Comparisons in place of an ASCII_WHITESPACE[data] lookup: 7 ms instead of 10 ms on
    # 7.4 MB (2-vCPU AMD EPYC VM). The uint8 subtractions wrap, so each range is one test.
    mask = data == 0x20
    mask |= (data - np.uint8(0x09)) < 5  # 0x09 .. 0x0D
    mask |= (data - np.uint8(0x1C)) < 4  # 0x1C .. 0x1F
    if not unicode_whitespace:
        return mask
    leads = np.flatnonzero(WHITESPACE_LEAD_BYTE[data])
    if leads.size == 0:
        return mask

    # Valid UTF-8 puts the continuation bytes of a lead byte in the same string, so the
    # clamp to the last byte only changes what invalid input reads.
    first = data[leads]
    second = data[np.minimum(leads + 1, data.size - 1)]
    third = data[np.minimum(leads + 2, data.size - 1)]
    two_bytes = (first == 0xC2) & ((second == 0x85) | (second == 0xA0))  # U+0085, U+00A0
    three_bytes = (
        ((first == 0xE1) & (second == 0x9A) & (third == 0x80))  # U+1680
        | ((first == 0xE2) & (second == 0x80) & ((third <= 0x8A) | np.isin(third, [0xA8, 0xA9, 0xAF])))  # U+2000..200A, U+2028, U+2029, U+202F
        | ((first == 0xE2) & (second == 0x81) & (third == 0x9F))  # U+205F
        | ((first == 0xE3) & (second == 0x80) & (third == 0x80))  # U+3000
    )
    for length, matched in ((2, two_bytes), (3, three_bytes)):
        for position in range(length):
            mask[leads[matched] + position] = True
    return mask


def find_words(
    strings: pa.Array, data: np.ndarray | None = None, unicode_whitespace: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Find the maximal runs of non-whitespace bytes in every string.

    Returns the start and end byte positions of the words in `data` (by default the
    strings' own data buffer) and per-string word offsets (int64). No word crosses the end
    of a string. With unicode_whitespace=False only ASCII whitespace separates words.
    """
    offsets, own_data = string_offsets(strings)
    data = own_data if data is None else data
    begin, end = int(offsets[0]), int(offsets[-1])
    in_word = ~whitespace_mask(data[begin:end], unicode_whitespace)
    string_starts = offsets[:-1] - begin
    string_ends = offsets[1:] - begin

    word_before = np.zeros(end - begin, dtype=bool)
    word_before[1:] = in_word[:-1]
    word_before[string_starts[string_starts < end - begin]] = False
    word_starts = np.flatnonzero(in_word & ~word_before)

    word_after = np.zeros(end - begin, dtype=bool)
    word_after[:-1] = in_word[1:]
    word_after[string_ends[string_ends > 0] - 1] = False
    word_ends = np.flatnonzero(in_word & ~word_after) + 1

    word_offsets = np.searchsorted(word_starts, offsets - begin).astype(np.int64)
    return word_starts + begin, word_ends + begin, word_offsets


def hash_normalized_words(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Hash the words of `normalize_text(strings)` and return them with per-string word offsets.

    ASCII strings are normalized with the ASCII_NORMALIZED byte table, which can leave
    several spaces where `normalize_text` leaves one but yields the same words. Only the
    other strings go through `normalize_text`.
    """
    offsets, data = string_offsets(strings)
    non_ascii = np.flatnonzero(~pc.string_is_ascii(strings).to_numpy(zero_copy_only=False))
    begin, end = int(offsets[0]), int(offsets[-1])
    normalized = np.zeros_like(data)
    normalized[begin:end] = ASCII_NORMALIZED[data[begin:end]]  # wrong only for the non-ASCII strings
    starts, ends, word_offsets = find_words(strings, normalized, unicode_whitespace=False)
    hashes = hash_byte_ranges(normalized, starts, ends - starts)
    counts = np.diff(word_offsets)
    if non_ascii.size == 0:
        return hashes, word_offsets

    # Drop the non-ASCII strings' words and put those of their Arrow normalization in their place.
    unicode_strings = normalize_text(strings.take(pa.array(non_ascii)))
    unicode_starts, unicode_ends, unicode_offsets = find_words(unicode_strings)
    unicode_hashes = hash_byte_ranges(string_offsets(unicode_strings)[1], unicode_starts, unicode_ends - unicode_starts)
    keep = np.ones(hashes.size, dtype=bool)
    keep[expand_ranges(word_offsets[non_ascii], counts[non_ascii])] = False
    counts[non_ascii] = np.diff(unicode_offsets)
    word_offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
    merged = np.empty(int(word_offsets[-1]), dtype=np.uint64)
    placed = np.zeros(merged.size, dtype=bool)
    placed[expand_ranges(word_offsets[non_ascii], counts[non_ascii])] = True
    merged[placed] = unicode_hashes
    merged[~placed] = hashes[keep]
    return merged, word_offsets


def expand_ranges(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Return the concatenation of arange(start, start + size) over all ranges."""
    output_starts = np.cumsum(sizes) - sizes
    positions = np.repeat(starts - output_starts, sizes)
    positions += np.arange(positions.size, dtype=positions.dtype)
    return positions


def text_word_hashes(texts: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Hash the words of normalized texts and return them (uint64) with per-text word offsets.

    A word is a maximal run of non-whitespace characters of `normalize_text(texts)`, with
    whitespace as in Python's str.split(), and is hashed with `hash_strings`. The texts are
    first split at ASCII whitespace into raw tokens, and only the distinct tokens are
    normalized and split further. That is exact because normalization maps each character
    on its own and keeps whitespace as whitespace.
    """
    texts = pc.fill_null(texts, "")
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    token_starts, _, token_offsets = find_words(texts, unicode_whitespace=False)

    # Each token runs up to the next token's start, so it keeps its trailing whitespace
    # and shares the texts' data buffer.
    end = int(string_offsets(texts)[0][-1])
    offset_type, string_type = (np.int32, pa.string()) if end < 2**31 else (np.int64, pa.large_string())
    token_bounds = pa.py_buffer(np.append(token_starts, end).astype(offset_type))
    tokens = pa.Array.from_buffers(string_type, token_starts.size, [None, token_bounds, texts.buffers()[2]])
    encoded = pc.dictionary_encode(tokens)
    token_entries = encoded.indices.to_numpy(zero_copy_only=False)

    # One token can hold several words ("end.start") or none ("--").
    entry_hashes, entry_word_offsets = hash_normalized_words(encoded.dictionary)
    entry_word_counts = np.diff(entry_word_offsets)
    token_word_counts = entry_word_counts[token_entries]
    if (entry_word_counts == 1).all():
        word_hashes = entry_hashes[token_entries]
    else:
        word_hashes = entry_hashes[expand_ranges(entry_word_offsets[:-1][token_entries], token_word_counts)]

    words_before_token = np.r_[0, np.cumsum(token_word_counts)]
    return word_hashes, words_before_token[token_offsets].astype(np.int64)


def text_shingles(texts: pa.Array | pa.ChunkedArray, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalize texts and return their word n-gram hashes (uint64) with per-text offsets."""
    return ngram_hashes(*text_word_hashes(texts), ngram)


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
