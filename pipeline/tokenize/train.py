"""Train a byte-level BPE tokenizer on a run's own text with Hugging Face `tokenizers`.

The result is a tokenizer.json with GPT-2's pre-tokenizer regex, the special tokens first
(ids 0, 1, ...), then the 256 byte tokens, then one token per merge in merge order, so
tiktoken can encode with it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)


def split_on_special_tokens(texts: Iterable[str], special_tokens: list[str]) -> Iterator[str]:
    """Yield the text between special-token strings, so no merge spans a document boundary."""
    for text in texts:
        pieces = [text]
        for token in special_tokens:
            pieces = [part for piece in pieces for part in piece.split(token)]
        yield from pieces


def train_bpe(texts: Iterable[str], vocab_size: int, special_tokens: list[str], path: str | Path) -> Path:
    """Train a byte-level BPE of `vocab_size` tokens (special tokens included) and save it to `path`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    minimum = 256 + len(special_tokens)
    if vocab_size < minimum:
        raise ValueError(f"tokenize.vocab_size {vocab_size} is below {minimum}: 256 bytes plus the special tokens")

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=0,
        show_progress=False,
    )
    tokenizer.train_from_iterator(split_on_special_tokens(texts, special_tokens), trainer=trainer)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(f".{path.name}.tmp")
    tokenizer.save(str(tmp_path))
    tmp_path.replace(path)
    log.info("trained a byte-level BPE of %d tokens into %s", tokenizer.get_vocab_size(), path)
    return path
