"""Load a run's tokenizer from the files its manifest lists: GPT-2 BPE (encoder.json) through tiktoken.

NOTE: a small private loader until pipeline/tokenize/ exposes one; it also reads a Hugging Face tokenizer.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

# GPT-2's pre-tokenizer regex (openai/gpt-2 src/encoder.py).
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT2_EOS = "<|endoftext|>"


class Tokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: list[int]) -> str: ...


def bytes_to_unicode() -> dict[int, str]:
    """Return GPT-2's byte -> printable character map, under which encoder.json stores byte strings.

    Printable Latin-1 bytes map to themselves; the other 68 bytes map to code points 256 and up, in byte order.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def load_tokenizer(tokenizer: dict[str, Any], base_dir: str | Path) -> Tokenizer:
    """Build the tokenizer that a manifest's `tokenizer` entry names; its `files` are relative to base_dir."""
    files = [Path(base_dir) / f for f in tokenizer.get("files", [])]
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"tokenizer file not found: {path} (listed in the manifest's tokenizer.files)")
    by_name = {p.name: p for p in files}

    if "encoder.json" in by_name:
        return _gpt2_encoding(tokenizer.get("name", "gpt2"), by_name["encoder.json"])
    json_files = [p for p in files if p.suffix == ".json"]
    if len(json_files) == 1:
        return _huggingface_tokenizer(json_files[0])
    raise ValueError(
        f"cannot load tokenizer {tokenizer.get('name')!r} from files {tokenizer.get('files')}; "
        "expected a GPT-2 encoder.json or one Hugging Face tokenizer.json"
    )


def _gpt2_encoding(name: str, encoder_json: Path) -> Tokenizer:
    import tiktoken

    with encoder_json.open(encoding="utf-8") as f:
        encoder: dict[str, int] = json.load(f)
    byte_of = {char: b for b, char in bytes_to_unicode().items()}
    # encoder.json ids are the BPE merge ranks: ids 0-255 are single bytes, later ids later merges.
    ranks = {bytes(byte_of[c] for c in token): rank for token, rank in encoder.items() if token != GPT2_EOS}
    special = {GPT2_EOS: encoder.get(GPT2_EOS, len(ranks))}
    encoding = tiktoken.Encoding(name, pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens=special)
    return _TiktokenTokenizer(encoding)


class _TiktokenTokenizer:
    def __init__(self, encoding: Any):
        self.encoding = encoding

    def encode(self, text: str) -> list[int]:
        # A prompt that contains "<|endoftext|>" encodes it as the EOS token.
        return self.encoding.encode(text, allowed_special="all")

    def decode(self, ids: list[int]) -> str:
        return self.encoding.decode(ids)


class _HuggingFaceTokenizer:
    def __init__(self, path: Path):
        from tokenizers import Tokenizer as HFTokenizer

        self.tokenizer = HFTokenizer.from_file(str(path))

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)


def _huggingface_tokenizer(path: Path) -> Tokenizer:
    return _HuggingFaceTokenizer(path)
