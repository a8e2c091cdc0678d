"""Tokenizers against their references: GPT-2 ids, trained BPE merges, the tiktoken fast path."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
import tiktoken
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers

from pipeline.tokenize import load_tokenizer
from pipeline.tokenize.bpe import GPT2_PATTERN, GPT2_PATTERN_FAST, byte_to_unicode, mergeable_ranks, read_vocab_and_merges
from pipeline.tokenize.train import train_bpe

TEXT_FILES = ["corpus.en", "tinystories_sample.txt", "german.txt", "address.txt"]


def gpt2_reference(data: Path) -> HFTokenizer:
    """GPT-2 in `tokenizers`: ByteLevel BPE from the published vocabulary and merges."""
    tokenizer = HFTokenizer(models.BPE.from_file(str(data / "gpt2_vocab.json"), str(data / "gpt2_merges.txt")))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


@pytest.fixture(scope="module")
def data(shared_data) -> Path:
    return shared_data / "tokenizer"


@pytest.fixture(scope="module")
def gpt2():
    return load_tokenizer({"tokenizer": "gpt2"})


@pytest.mark.parametrize("name", TEXT_FILES)
def test_gpt2_ids_match_reference(gpt2, data, name):
    text = (data / name).read_text(encoding="utf-8")
    expected = gpt2_reference(data).encode(text, add_special_tokens=False).ids

    ids = gpt2.encode_batch([text])[0]

    assert gpt2.encoder == "tiktoken"
    assert ids == expected


@pytest.mark.parametrize("name", TEXT_FILES)
def test_gpt2_decode_round_trips(gpt2, data, name):
    raw = (data / name).read_bytes()
    ids = gpt2.encode_batch([raw.decode("utf-8")])[0]
    assert gpt2.decode(ids).encode("utf-8") == raw


def test_gpt2_attributes(gpt2):
    assert gpt2.name == "gpt2"
    assert gpt2.eos_id == 50256
    assert gpt2.vocab_size == 50257
    assert [Path(path).name for path in gpt2.files] == ["encoder.json", "vocab.bpe"]


def test_gpt2_files_match_published_vocabulary(gpt2, data):
    wheel_vocab, wheel_merges = read_vocab_and_merges(*gpt2.files)
    vocab, merges = read_vocab_and_merges(data / "gpt2_vocab.json", data / "gpt2_merges.txt")
    assert wheel_vocab == vocab
    assert wheel_merges == merges


def test_literal_eos_string_is_text(gpt2, data):
    text = (data / "tinystories_sample.txt").read_text(encoding="utf-8")
    assert "<|endoftext|>" in text

    ids = gpt2.encode_batch([text])[0]

    assert gpt2.eos_id not in ids
    assert gpt2.decode(ids) == text


def test_fast_pattern_splits_like_gpt2_pattern(gpt2, data):
    vocab, merges = read_vocab_and_merges(*gpt2.files)
    ranks = mergeable_ranks(vocab, merges, {"<|endoftext|>"})
    original = tiktoken.Encoding("gpt2-original-regex", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={})
    fast = tiktoken.Encoding("gpt2-fast-regex", pat_str=GPT2_PATTERN_FAST, mergeable_ranks=ranks, special_tokens={})
    texts = [(data / name).read_text(encoding="utf-8") for name in TEXT_FILES]
    texts += ["a  \n\n b\t\t", "trailing spaces   ", "   ", "\n", "x\u3000\u3000y", "it's 'LL 're 12,345.6"]

    for text in texts:
        assert fast.encode_ordinary(text) == original.encode_ordinary(text)


def test_byte_to_unicode_matches_tokenizers_alphabet():
    mapping = byte_to_unicode()
    assert len(set(mapping.values())) == 256
    assert set(mapping.values()) == set(pre_tokenizers.ByteLevel.alphabet())


def test_tokenizer_json_uses_tiktoken_with_same_ids(gpt2, data, tmp_path):
    path = tmp_path / "tokenizer.json"
    gpt2_reference(data).save(str(path))
    text = (data / "corpus.en").read_text(encoding="utf-8")

    fast = load_tokenizer({"tokenizer": "hf", "tokenizer_file": str(path)})
    reference = load_tokenizer({"tokenizer": "hf", "tokenizer_file": str(path), "encoder": "tokenizers"})

    assert fast.encoder == "tiktoken"
    assert reference.encoder == "tokenizers"
    assert fast.encode_batch([text]) == reference.encode_batch([text])
    assert fast.eos_id == 50256


def reversed_id_tokenizer_json(data: Path, path: Path, vocab_size: int = 70_000) -> Path:
    """Write GPT-2 with ids reversed into the top of a `vocab_size` vocabulary (filler tokens below).

    Frequent tokens then get ids above 65,535, and the id order contradicts the merge
    order, so this tokenizer must take the `tokenizers` path.
    """
    vocab, merges = read_vocab_and_merges(data / "gpt2_vocab.json", data / "gpt2_merges.txt")
    top = vocab_size - 1
    remapped = {token: top - token_id for token, token_id in vocab.items()}
    for filler in range(vocab_size - len(vocab)):
        remapped[f"<filler_{filler}>"] = filler
    tokenizer = HFTokenizer(models.BPE(remapped, merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.save(str(path))
    return path


def test_inconsistent_merges_use_tokenizers(data, tmp_path):
    path = reversed_id_tokenizer_json(data, tmp_path / "reversed.json")
    text = (data / "german.txt").read_text(encoding="utf-8")

    tokenizer = load_tokenizer({"tokenizer": "hf", "tokenizer_file": str(path)})
    ids = tokenizer.encode_batch([text])[0]

    assert tokenizer.encoder == "tokenizers"
    assert tokenizer.vocab_size == 70_000
    assert max(ids) >= 2**16
    assert tokenizer.decode(ids) == text


# --- BPE training against the reference result (vocabulary 500, <|endoftext|>, corpus.en) ---

PRETOKEN = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+""")


def naive_bpe_merges(text: str, merge_count: int, prefer_greater_bytes: bool) -> list[tuple[str, str]]:
    """Train BPE by counting pairs each round; ties on count go to one of two rules.

    prefer_greater_bytes=True takes the lexicographically greatest pair of token bytes
    (the reference's rule). False takes the pair with the smallest (left id, right id),
    ids being byte-level characters in code-point order and then merges in order: the
    rule of `tokenizers`' BpeTrainer (0.23), whose heap pops the smaller pair first.
    """
    # NOTE: this regex approximates GPT-2's \p{L}/\p{N} classes with Python's \w; on corpus.en both split alike.
    to_char = byte_to_unicode()
    from_char = {char: byte for byte, char in to_char.items()}
    words = Counter()
    for document in text.split("<|endoftext|>"):
        for match in PRETOKEN.findall(document):
            words[tuple(to_char[byte] for byte in match.encode("utf-8"))] += 1
    token_id = {char: number for number, char in enumerate(sorted(to_char.values()))}

    merges = []
    for _ in range(merge_count):
        pairs = Counter()
        for word, count in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += count
        best_count = max(pairs.values())
        tied = [pair for pair, count in pairs.items() if count == best_count]
        if prefer_greater_bytes:
            best = max(tied, key=lambda pair: (bytes(from_char[c] for c in pair[0]), bytes(from_char[c] for c in pair[1])))
        else:
            best = min(tied, key=lambda pair: (token_id[pair[0]], token_id[pair[1]]))
        merges.append(best)
        token_id[best[0] + best[1]] = len(token_id)
        words = Counter({merge_word(word, best): count for word, count in words.items()})
    return merges


def merge_word(word: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    merged, index = [], 0
    while index < len(word):
        if index + 1 < len(word) and (word[index], word[index + 1]) == pair:
            merged.append(pair[0] + pair[1])
            index += 2
        else:
            merged.append(word[index])
            index += 1
    return tuple(merged)


@pytest.fixture(scope="module")
def trained_500(data, tmp_path_factory) -> Path:
    text = (data / "corpus.en").read_text(encoding="utf-8")
    return train_bpe([text], 500, ["<|endoftext|>"], tmp_path_factory.mktemp("bpe") / "tokenizer.json")


def trained_merges(path: Path) -> list[tuple[str, str]]:
    merges = json.loads(path.read_text(encoding="utf-8"))["model"]["merges"]
    return [tuple(merge.split(" ")) if isinstance(merge, str) else tuple(merge) for merge in merges]


def reference_merges(data: Path) -> list[tuple[str, str]]:
    lines = (data / "train-bpe-reference-merges.txt").read_text(encoding="utf-8").splitlines()
    return [tuple(line.split(" ")) for line in lines if line]


def test_trained_bpe_follows_tokenizers_tie_rule(trained_500, data):
    text = (data / "corpus.en").read_text(encoding="utf-8")
    merges = trained_merges(trained_500)
    assert len(merges) == 500 - 256 - 1
    assert merges == naive_bpe_merges(text, len(merges), prefer_greater_bytes=False)


def test_reference_merges_follow_greater_bytes_rule(data):
    text = (data / "corpus.en").read_text(encoding="utf-8")
    reference = reference_merges(data)
    assert reference == naive_bpe_merges(text, len(reference), prefer_greater_bytes=True)


def test_trained_bpe_shares_reference_vocabulary(trained_500, data):
    """Both trainers make the same tokens except where a count tie was broken differently."""
    reference = reference_merges(data)
    merges = trained_merges(trained_500)
    vocab = json.loads(trained_500.read_text(encoding="utf-8"))["model"]["vocab"]
    reference_vocab = json.loads((data / "train-bpe-reference-vocab.json").read_text(encoding="utf-8"))

    assert merges[:31] == reference[:31]  # merge 31 is the first count tie that the two rules break differently
    assert len(set(merges) & set(reference)) == 239
    assert len(vocab) == len(reference_vocab) == 500
    assert len(set(vocab) & set(reference_vocab)) == 497  # "124" is in both, from ("12", "4") and ("1", "24")
    assert vocab["<|endoftext|>"] == reference_vocab["<|endoftext|>"] == 0


def test_trained_bpe_tiktoken_matches_tokenizers(trained_500, data):
    texts = [(data / name).read_text(encoding="utf-8") for name in TEXT_FILES]

    fast = load_tokenizer({"tokenizer": "hf", "tokenizer_file": str(trained_500)})
    reference = load_tokenizer({"tokenizer": "hf", "tokenizer_file": str(trained_500), "encoder": "tokenizers"})

    assert fast.encoder == "tiktoken"
    assert fast.encode_batch(texts) == reference.encode_batch(texts)
    assert fast.eos_id == 0
    assert fast.decode(fast.encode_batch(texts)[1]) == texts[1]


def test_encode_flat_equals_encode_batch():
    from pipeline.tokenize import load_tokenizer

    tokenizer = load_tokenizer({"tokenizer": "gpt2"})
    texts = ["Hello world.", "", "A literal <|endoftext|> stays text.", "Ünïcödé ✓ 日本語"]
    flat, lengths = tokenizer.encode_flat(texts, tokenizer.eos_id)
    expected = []
    for document in tokenizer.encode_batch(texts):
        expected += document + [tokenizer.eos_id]
    assert flat.tolist() == expected
    assert lengths == [len(document) + 1 for document in tokenizer.encode_batch(texts)]
    assert flat.tolist().count(tokenizer.eos_id) == len(texts)
