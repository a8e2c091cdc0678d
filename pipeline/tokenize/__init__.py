"""Tokenization: kept documents to token shards (`tokenize_phase`) and the tokenizers behind them.

`load_tokenizer` rebuilds a run's tokenizer from its tokens/manifest.json, offline.
"""

from pipeline.tokenize.phase import tokenize_phase
from pipeline.tokenize.tokenizer import Tokenizer, load_tokenizer

__all__ = ["Tokenizer", "load_tokenizer", "tokenize_phase"]
