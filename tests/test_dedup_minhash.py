"""Shingles, MinHash signatures and band keys, checked against datasketch and exact sets."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pyarrow as pa
import pytest
from datasketch import MinHash

from pipeline.dedup import minhash
from pipeline.dedup import shingles as shingles_module
from pipeline.dedup.minhash import band_keys, candidate_probability, jaccard, permutations, shingle_hash32, signatures
from pipeline.dedup.shingles import hash_strings, ngram_hashes, normalize_text, text_shingles, unique_per_text


@pytest.fixture(scope="module")
def real_texts(shared_data) -> list[str]:
    path = shared_data / "cc-text" / "cc-main-2019-30-697-docs.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle][:200]


def identity(value):
    return value


def test_normalize_text_strips_case_accents_punctuation():
    normalized = normalize_text(pa.array(["Héllo, WORLD!  Ça-va?", None]))
    assert normalized.to_pylist()[0].split() == ["hello", "world", "ca", "va"]
    assert normalized.to_pylist()[1] == ""


def test_text_shingles_count_and_short_texts():
    shingles, offsets = text_shingles(pa.array(["a b c d e f g", "a b c d", "", None, "x b c d e"]), 5)
    assert offsets.tolist() == [0, 3, 3, 3, 3, 4]
    assert shingles.dtype == np.uint64


def test_text_shingles_ignore_case_and_punctuation():
    shingles, offsets = text_shingles(pa.array(["One two, three four five six.", "one TWO three -- four five six"]), 5)
    assert shingles[offsets[0] : offsets[1]].tolist() == shingles[offsets[1] : offsets[2]].tolist()


# Texts where raw tokens and normalized words differ: Unicode whitespace (NBSP, U+2003,
# U+3000, U+0085), punctuation inside tokens, combining marks at a token start, trailing
# whitespace, ASCII control characters and all-punctuation tokens.
TRICKY_TEXTS = [
    "Héllo,WORLD!\u00a0Ça-va?  end.Start \u2003x\u3000y\u0085z ",
    " \u0301abc -- ΟΔΟΣ\tναι\x1fnai\x00 NUL\n",
    "",
    None,
    "plain ascii words only here",
    "ﬁn Å Ω 가 \U0001F600 smile :-) ",
    "\u2028\u2029   ",
    "tail-with-space ",
]


@pytest.mark.parametrize("ngram", [1, 2, 5])
def test_text_shingles_match_python_split(ngram):
    texts = pa.array(TRICKY_TEXTS)
    word_lists = [text.split() for text in normalize_text(texts).to_pylist()]
    word_hashes = hash_strings(pa.array([word for words in word_lists for word in words], pa.string()))
    word_offsets = np.r_[0, np.cumsum([len(words) for words in word_lists])].astype(np.int64)
    expected, expected_offsets = ngram_hashes(word_hashes, word_offsets, ngram)

    shingles, offsets = text_shingles(texts, ngram)
    assert offsets.tolist() == expected_offsets.tolist()
    assert shingles.tolist() == expected.tolist()


def test_text_shingles_same_for_large_string_and_slices():
    shingles, offsets = text_shingles(pa.array(TRICKY_TEXTS), 2)
    large_shingles, large_offsets = text_shingles(pa.array(TRICKY_TEXTS, pa.large_string()), 2)
    assert large_shingles.tolist() == shingles.tolist()
    assert large_offsets.tolist() == offsets.tolist()
    sliced_shingles, sliced_offsets = text_shingles(pa.array(TRICKY_TEXTS).slice(1), 2)
    assert sliced_shingles.tolist() == shingles[offsets[1] :].tolist()
    assert (sliced_offsets + offsets[1]).tolist() == offsets[1:].tolist()


def test_hash_strings_same_for_sliced_array():
    strings = pa.array(["alpha", "", "beta", "alpha", "gamma"])
    full = hash_strings(strings)
    assert full[0] == full[3]
    assert full[0] != full[2]
    assert hash_strings(strings.slice(2)).tolist() == full[2:].tolist()



def reference_string_hash(value: bytes) -> int:
    """Hash bytes as `hash_strings` does, with Python integers and Horner's rule."""
    if not value:
        return int(shingles_module.EMPTY_STRING_HASH)
    mask = (1 << 64) - 1
    polynomial = 0
    for byte in value:
        polynomial = (polynomial * int(shingles_module.BYTE_MULTIPLIER) + byte) & mask
    mixed = polynomial ^ ((len(value) * int(shingles_module.LENGTH_MULTIPLIER)) & mask)
    return int(shingles_module.fmix64(np.array([mixed], dtype=np.uint64))[0])


def test_hash_strings_matches_reference():
    values = ["", "a", "hello", "naïve café", "x" * 300, "日本語のテキスト"]
    expected = [reference_string_hash(value.encode()) for value in values]
    assert hash_strings(pa.array(values)).tolist() == expected


def test_hash_byte_ranges_unordered_overlapping():
    data = np.frombuffer(b"the quick brown fox jumps", dtype=np.uint8)
    starts = np.array([10, 4, 0, 4, 6, 3], dtype=np.int64)
    sizes = np.array([5, 5, 3, 9, 0, 12], dtype=np.int64)
    expected = [reference_string_hash(data[s : s + n].tobytes()) for s, n in zip(starts, sizes)]
    assert shingles_module.hash_byte_ranges(data, starts, sizes).tolist() == expected


def test_hash_strings_uncached_power_tables(monkeypatch):
    strings = pa.array(["a" * 40, "b" * 200, "word", ""])
    cached = hash_strings(strings)
    monkeypatch.setattr(shingles_module, "MAX_CACHED_POWERS", 16)
    monkeypatch.setattr(shingles_module, "_POWERS", {})
    assert hash_strings(strings).tolist() == cached.tolist()
    assert shingles_module._POWERS == {}

def test_permutations_match_datasketch():
    a, b = permutations(128, 7)
    reference = MinHash(num_perm=128, seed=7)
    assert reference.scheme == "affine32"
    assert np.array_equal(reference.permutations[0], a)
    assert np.array_equal(reference.permutations[1], b)


def test_signatures_equal_datasketch(real_texts):
    shingles, offsets = text_shingles(pa.array(real_texts), 5)
    a, b = permutations(128, 1)
    ours = signatures(shingles, offsets, a, b)
    compared = 0
    for i in range(len(real_texts)):
        values = shingle_hash32(shingles[offsets[i] : offsets[i + 1]])
        if values.size == 0:
            continue
        reference = MinHash(num_perm=128, seed=1, hashfunc=identity)
        reference.update_batch(values.tolist())
        assert np.array_equal(reference.hashvalues, ours[i]), f"text {i} differs from datasketch"
        compared += 1
    assert compared > 150


def test_signatures_equal_datasketch_given_permutations(real_texts):
    shingles, offsets = text_shingles(pa.array(real_texts[:20]), 5)
    a, b = permutations(64, 99)
    ours = signatures(shingles, offsets, a, b)
    reference = MinHash(num_perm=64, hashfunc=identity, permutations=(a, b), scheme="affine32")
    reference.update_batch(shingle_hash32(shingles[offsets[0] : offsets[1]]).tolist())
    assert np.array_equal(reference.hashvalues, ours[0])


def test_signature_estimate_matches_datasketch_jaccard(real_texts):
    shingles, offsets = text_shingles(pa.array(real_texts[12:14]), 5)
    a, b = permutations(128, 1)
    ours = signatures(shingles, offsets, a, b)
    first, second = MinHash(num_perm=128, hashfunc=identity), MinHash(num_perm=128, hashfunc=identity)
    first.update_batch(shingle_hash32(shingles[offsets[0] : offsets[1]]).tolist())
    second.update_batch(shingle_hash32(shingles[offsets[1] : offsets[2]]).tolist())
    assert float(np.mean(ours[0] == ours[1])) == pytest.approx(first.jaccard(second))


def test_signatures_independent_of_slice_size(real_texts, monkeypatch):
    shingles, offsets = text_shingles(pa.array(real_texts), 5)
    a, b = permutations(32, 3)
    whole = signatures(shingles, offsets, a, b)
    monkeypatch.setattr(minhash, "SLICE_SHINGLES", 97)
    assert np.array_equal(signatures(shingles, offsets, a, b), whole)


def test_signature_of_text_without_shingles_is_max():
    shingles, offsets = text_shingles(pa.array(["too short", "one two three four five"]), 5)
    a, b = permutations(16, 1)
    signature = signatures(shingles, offsets, a, b)
    assert (signature[0] == minhash.MAX_HASH32).all()
    assert not (signature[1] == minhash.MAX_HASH32).all()


def test_band_keys_equal_only_for_equal_bands():
    first = np.arange(32, dtype=np.uint32).reshape(1, 32)
    second = first.copy()
    second[0, 8:] += 1  # only band 0 (values 0..7) stays equal
    keys = band_keys(np.vstack([first, second]), bands=4, rows=8)
    assert keys.shape == (2, 4)
    assert keys[0, 0] == keys[1, 0]
    assert (keys[0, 1:] != keys[1, 1:]).all()


def test_band_keys_differ_across_bands():
    same_values = np.zeros((1, 16), dtype=np.uint32)
    keys = band_keys(same_values, bands=2, rows=8)
    assert keys[0, 0] != keys[0, 1]


def test_band_keys_reject_too_many_rows():
    with pytest.raises(ValueError, match="exceeds num_perm"):
        band_keys(np.zeros((1, 16), dtype=np.uint32), bands=3, rows=8)


def test_jaccard_of_sorted_sets():
    assert jaccard(np.array([1, 2, 3, 4]), np.array([3, 4, 5, 6])) == pytest.approx(2 / 6)
    assert jaccard(np.array([], np.uint64), np.array([], np.uint64)) == 0.0


def test_unique_per_text_sorts_and_dedups():
    values, offsets = unique_per_text(np.array([5, 3, 5, 9, 9, 1], np.uint64), np.array([0, 3, 3, 6]))
    assert values.tolist() == [3, 5, 1, 9]
    assert offsets.tolist() == [0, 2, 2, 4]


def test_default_bands_probabilities():
    # The values stated in configs/default.yaml for 16 bands of 8 rows.
    assert candidate_probability(0.5, 16, 8) == pytest.approx(0.0607, abs=1e-4)
    assert candidate_probability(0.8, 16, 8) == pytest.approx(0.9470, abs=1e-4)
    assert candidate_probability(0.9, 16, 8) == pytest.approx(0.9999, abs=1e-4)
