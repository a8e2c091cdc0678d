"""Byte-level BPE vocabularies as tiktoken rank tables, read offline from local files.

GPT-2 files store each token as a string with one printable character per byte
(`byte_to_unicode`). tiktoken takes the raw bytes and a rank per token instead.
"""

from __future__ import annotations

import json
from pathlib import Path

# GPT-2's pre-tokenizer regex (OpenAI's encoder.py); tokenizers' ByteLevel(use_regex=True) uses the same one.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# The same splits as GPT2_PATTERN, written with possessive quantifiers so that tiktoken's
# regex engine backtracks less. Tests check that both give the same ids.
GPT2_PATTERN_FAST = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""

EOS_TOKEN = "<|endoftext|>"


class InconsistentMergesError(ValueError):
    """A vocabulary whose merge order differs from its id order, so tiktoken would encode it differently."""


def byte_to_unicode() -> dict[int, str]:
    """Map each byte to the printable character that byte-level BPE files use for it.

    Bytes that are printable Latin-1 characters map to themselves; the other 68 bytes map,
    in byte order, to the code points from 256 upward.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {byte: chr(byte) for byte in printable}
    next_code_point = 256
    for byte in range(256):
        if byte not in mapping:
            mapping[byte] = chr(next_code_point)
            next_code_point += 1
    return mapping


def token_bytes(token: str, decoder: dict[str, int]) -> bytes:
    """Return the raw bytes of a vocabulary token written in the byte-to-unicode alphabet."""
    try:
        return bytes(decoder[char] for char in token)
    except KeyError as error:
        raise ValueError(f"token {token!r} contains {error.args[0]!r}, which is not a byte-level BPE character") from None


def read_vocab_and_merges(vocab_file: str | Path, merges_file: str | Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Read a GPT-2 style encoder.json / vocab.json and its vocab.bpe / merges.txt."""
    vocab = json.loads(Path(vocab_file).read_text(encoding="utf-8"))
    merges = []
    for line_number, line in enumerate(Path(merges_file).read_text(encoding="utf-8").splitlines(), 1):
        if not line or line.startswith("#version"):
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise ValueError(f"{merges_file}:{line_number}: expected two tokens separated by one space, got {line!r}")
        merges.append((parts[0], parts[1]))
    return vocab, merges


def unmerged_tokens(vocab: dict[str, int], merges: list[tuple[str, str]]) -> list[str]:
    """Return the multi-byte vocabulary tokens that no merge produces, such as GPT-2's <|endoftext|>."""
    merged = {left + right for left, right in merges}
    return [token for token in vocab if len(token) > 1 and token not in merged]


def mergeable_ranks(vocab: dict[str, int], merges: list[tuple[str, str]], special_tokens: set[str]) -> dict[bytes, int]:
    """Convert a byte-level BPE vocabulary to tiktoken ranks (token bytes -> id).

    tiktoken merges the adjacent pair whose result has the lowest id, while the reference
    BPE merges the pair that comes first in the merge list. The two agree when every
    multi-byte token is the result of exactly one merge and ids increase with merge order.
    Any other vocabulary raises InconsistentMergesError, so the caller encodes with `tokenizers`.
    """
    decoder = {char: byte for byte, char in byte_to_unicode().items()}
    ranks = {token_bytes(token, decoder): token_id for token, token_id in vocab.items() if token not in special_tokens}
    if len(ranks) != len(vocab) - len(special_tokens & vocab.keys()):
        raise InconsistentMergesError("two vocabulary tokens have the same bytes")
    missing_bytes = [byte for byte in range(256) if bytes([byte]) not in ranks]
    if missing_bytes:
        raise InconsistentMergesError(f"the vocabulary lacks {len(missing_bytes)} single-byte tokens, e.g. byte {missing_bytes[0]}")

    merged_tokens = set()
    previous_id = -1
    for index, (left, right) in enumerate(merges):
        merged = left + right
        ids = [vocab.get(left), vocab.get(right), vocab.get(merged)]
        if None in ids:
            raise InconsistentMergesError(f"merge {index} ({left!r}, {right!r}) uses a token that is not in the vocabulary")
        if ids[2] <= previous_id or ids[2] <= max(ids[0], ids[1]):
            raise InconsistentMergesError(f"merge {index} ({left!r}, {right!r}) gives id {ids[2]}, out of merge order")
        if merged in merged_tokens:
            raise InconsistentMergesError(f"token {merged!r} is the result of two merges")
        merged_tokens.add(merged)
        previous_id = ids[2]

    unmerged = [token for token in vocab if len(token) > 1 and token not in merged_tokens and token not in special_tokens]
    if unmerged:
        raise InconsistentMergesError(f"{len(unmerged)} multi-byte tokens come from no merge, e.g. {unmerged[0]!r}")
    return ranks
