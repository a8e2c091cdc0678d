"""Tests of the training loop: initial loss, overfitting one batch, exact resume, checkpoints and rejected shards.

Runs `model.train.main` in this process on tiny token folders written in tmp_path.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from model.checkpoint import checkpoint_path
from model.config import ModelConfig, TrainConfig
from model.data import ShardError
from model.metrics import read_metrics
from model.optim import build_optimizer
from model.train import main
from model.transformer import Transformer
from test_model_data import random_tokens, write_token_dir, single_thread  # noqa: F401 (autouse fixture)

VOCAB = 200
CONFIG = """
preset: tiny
model: {n_layer: 2, n_head: 2, n_embd: 32, context_length: 16}
train:
  batch_size: 4
  grad_accum_steps: 2
  max_steps: 8
  lr_decay_steps: 8
  warmup_steps: 2
  eval_interval: 4
  eval_batches: 2
  checkpoint_interval: 100
  log_interval: 4
"""


@pytest.fixture()
def run_files(tmp_path):
    tokens = write_token_dir(tmp_path / "tokens", [random_tokens(3000, VOCAB, seed=1), random_tokens(2000, VOCAB, seed=2)],
                             [random_tokens(500, VOCAB, seed=3)], vocab_size=VOCAB, sha256="sha-a")
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG)
    return tokens, config


def losses(ckpt_dir) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(ckpt_dir) if "loss" in r}


def test_untrained_loss_near_log_vocab():
    torch.manual_seed(0)
    model = Transformer(ModelConfig(n_layer=2, n_head=2, n_embd=32, context_length=16, vocab_size=50257))
    idx = torch.randint(0, 50257, (4, 16))
    targets = torch.randint(0, 50257, (4, 16))
    _, loss = model(idx, targets)
    assert loss.item() == pytest.approx(math.log(50257), abs=0.1)


def test_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    model = Transformer(ModelConfig(n_layer=2, n_head=2, n_embd=32, context_length=16, vocab_size=64))
    optimizer = build_optimizer(model, TrainConfig(lr=1e-2, weight_decay=0.0), "cpu")
    x = torch.randint(0, 64, (4, 17))
    for _ in range(60):
        _, loss = model(x[:, :-1], x[:, 1:])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert loss.item() < 0.1


def test_training_lowers_loss_and_logs(run_files, tmp_path):
    tokens, config = run_files
    # A learnable stream: token i + 1 always follows token i.
    write_token_dir(tokens, [np.arange(4000) % VOCAB], [np.arange(500) % VOCAB], vocab_size=VOCAB, sha256="sha-a")
    config.write_text(CONFIG.replace("lr_decay_steps: 8", "lr_decay_steps: 30\n  lr: 0.01\n  min_lr: 0.001"))
    out = tmp_path / "ckpt"
    main(["--data", str(tokens), "-o", str(out), "-c", str(config), "--device", "cpu", "--max-steps", "30"])
    records = read_metrics(out)
    step_losses = [r["loss"] for r in records if "loss" in r]
    assert len(step_losses) == 30
    assert step_losses[-1] < step_losses[0] - 1.0
    assert all(r["tokens_per_second"] > 0 and r["mfu"] is None for r in records if "loss" in r)
    assert [r["step"] for r in records if "val_loss" in r] == [4, 8, 12, 16, 20, 24, 28, 30]


def test_resume_continues_same_loss_curve(run_files, tmp_path):
    tokens, config = run_files
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    main(["--data", str(tokens), "-o", str(straight), "-c", str(config), "--device", "cpu"])
    main(["--data", str(tokens), "-o", str(resumed), "-c", str(config), "--device", "cpu", "--max-steps", "3"])
    assert sorted(losses(resumed)) == [1, 2, 3]
    main(["--data", str(tokens), "-o", str(resumed), "--device", "cpu", "--max-steps", "8"])  # resumes by itself

    expected, actual = losses(straight), losses(resumed)
    assert sorted(actual) == list(range(1, 9))
    for step in range(1, 9):
        assert actual[step] == pytest.approx(expected[step], rel=1e-6, abs=1e-7), f"step {step}"
    straight_weights = torch.load(checkpoint_path(straight), weights_only=True)["model"]
    resumed_weights = torch.load(checkpoint_path(resumed), weights_only=True)["model"]
    for name, tensor in straight_weights.items():
        torch.testing.assert_close(resumed_weights[name], tensor, rtol=1e-6, atol=1e-7)


def test_checkpoint_contents_load_weights_only(run_files, tmp_path):
    tokens, config = run_files
    out = tmp_path / "ckpt"
    main(["--data", str(tokens), "-o", str(out), "-c", str(config), "--device", "cpu", "--max-steps", "2"])
    state = torch.load(checkpoint_path(out), weights_only=True)
    assert state["step"] == 2
    assert set(state["rng"]) == {"python", "numpy", "torch", "cuda"}
    assert state["data"]["train_sampler"]["bit_generator"]["bit_generator"] == "PCG64"
    assert state["tokens"]["tokenizer"]["sha256"] == "sha-a"
    assert state["tokens"]["vocab_size"] == VOCAB
    assert state["config"]["model"]["vocab_size"] == VOCAB
    assert state["optimizer"]["state"]  # AdamW moments are saved


def test_resume_rejects_other_tokenizer(run_files, tmp_path):
    tokens, config = run_files
    out = tmp_path / "ckpt"
    main(["--data", str(tokens), "-o", str(out), "-c", str(config), "--device", "cpu", "--max-steps", "2"])
    other = write_token_dir(tmp_path / "other", [random_tokens(3000, VOCAB)], vocab_size=VOCAB, sha256="sha-b")
    with pytest.raises(ShardError, match="tokenizer mismatch"):
        main(["--data", str(other), "-o", str(out), "--device", "cpu", "--max-steps", "4"])


def test_resume_rejects_other_vocab_size(run_files, tmp_path):
    tokens, config = run_files
    out = tmp_path / "ckpt"
    main(["--data", str(tokens), "-o", str(out), "-c", str(config), "--device", "cpu", "--max-steps", "2"])
    other = write_token_dir(tmp_path / "other", [random_tokens(3000, 300)], vocab_size=300, sha256="sha-a")
    with pytest.raises(ShardError, match="vocab_size mismatch"):
        main(["--data", str(other), "-o", str(out), "--device", "cpu", "--max-steps", "4"])


def test_explicit_resume_without_checkpoint_fails(run_files, tmp_path):
    tokens, config = run_files
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        main(["--data", str(tokens), "-o", str(tmp_path / "empty"), "-c", str(config), "--resume"])


def test_tokenizer_files_copied_to_checkpoint(tmp_path):
    tokens = write_token_dir(tmp_path / "tokens", [random_tokens(3000, VOCAB)], vocab_size=VOCAB,
                             tokenizer_files=["tokenizer/vocab.txt"])
    (tokens / "tokenizer").mkdir()
    (tokens / "tokenizer" / "vocab.txt").write_text("a b c")
    out = tmp_path / "ckpt"
    main(["--data", str(tokens), "-o", str(out), "--preset", "tiny", "--device", "cpu", "--max-steps", "1"])
    assert (out / "tokenizer" / "vocab.txt").read_text() == "a b c"
