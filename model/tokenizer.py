"""Load a run's tokenizer from the files its manifest lists, for prompts and samples in model.generate.

Manifests written by pipeline/tokenize load through its loader; this module reads bare GPT-2 entries itself.
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


def load_tokenizer(entry: dict[str, Any], base_dir: str | Path) -> Tokenizer:
    """Build the tokenizer that a manifest's `tokenizer` entry describes; its `files` are relative to base_dir.

    Entries written by pipeline/tokenize (they carry `format` and `eos_token`) load through that
    package's loader, which also checks the files' sha256. An entry with only name, sha256 and
    files must list a GPT-2 encoder.json, which this module reads itself.
    """
    if "format" in entry and "eos_token" in entry:
        from pipeline.tokenize import load_tokenizer as load_pipeline_tokenizer

        return _PipelineTokenizer(load_pipeline_tokenizer({"tokenizer": entry}, base_dir))

    files = [Path(base_dir) / f for f in entry.get("files", [])]
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"tokenizer file not found: {path} (listed in the manifest's tokenizer.files)")
    encoder_json = [p for p in files if p.name == "encoder.json"]
    if not encoder_json:
        raise ValueError(f"cannot load tokenizer {entry.get('name')!r} from files {entry.get('files')}: "
                         "expected a GPT-2 encoder.json, or a manifest written by pipeline/tokenize")
    return _gpt2_encoding(entry.get("name", "gpt2"), encoder_json[0])


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
        return self.encoding.encode_ordinary(text)

    def decode(self, ids: list[int]) -> str:
        return self.encoding.decode(ids, errors="replace")


class _PipelineTokenizer:
    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode_batch([text])[0]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)
