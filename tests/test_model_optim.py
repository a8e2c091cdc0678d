"""Tests of the optimizer setup (weight-decay groups, one AdamW step by hand) and the learning-rate schedule."""

from __future__ import annotations

import math

import pytest
import torch

from model.config import ModelConfig, TrainConfig
from model.optim import build_optimizer, lr_at, param_groups
from model.transformer import Transformer
from test_model_data import single_thread  # noqa: F401 (autouse fixture)


def tiny_model(tie: bool = True) -> Transformer:
    torch.manual_seed(0)
    return Transformer(ModelConfig(n_layer=2, n_head=2, n_embd=16, context_length=8, vocab_size=60, tie_embeddings=tie))


def test_matrices_decay_and_vectors_do_not():
    model = tiny_model(tie=False)
    decay, no_decay = param_groups(model, weight_decay=0.1)
    assert decay["weight_decay"] == 0.1
    assert no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"])
    assert all(p.dim() == 1 for p in no_decay["params"])
    assert any(p is model.embed.weight for p in decay["params"])
    assert any(p is model.norm.weight for p in no_decay["params"])


def test_every_parameter_in_one_group_once():
    model = tiny_model(tie=True)
    decay, no_decay = param_groups(model, weight_decay=0.1)
    grouped = [id(p) for p in decay["params"] + no_decay["params"]]
    assert len(grouped) == len(set(grouped))
    assert set(grouped) == {id(p) for p in model.parameters()}


def manual_adamw(param: torch.Tensor, grads: list[torch.Tensor], lr: float, wd: float, b1: float, b2: float, eps: float):
    """AdamW (Loshchilov and Hutter) written out: decoupled decay, bias-corrected moments."""
    p = param.clone()
    m = torch.zeros_like(p)
    v = torch.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        p = p * (1 - lr * wd)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        p = p - lr * m_hat / (v_hat.sqrt() + eps)
    return p


def test_two_steps_match_manual_adamw():
    model = tiny_model(tie=True)
    config = TrainConfig(lr=0.01, weight_decay=0.1, beta1=0.9, beta2=0.95, eps=1e-8)
    optimizer = build_optimizer(model, config, "cpu")
    params = list(model.parameters())
    start = [p.detach().clone() for p in params]
    generator = torch.Generator().manual_seed(1)
    grads = [[torch.randn(p.shape, generator=generator) for p in params] for _ in range(2)]

    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g.clone()
        optimizer.step()

    for i, p in enumerate(params):
        wd = 0.1 if p.dim() >= 2 else 0.0
        expected = manual_adamw(start[i], [grads[0][i], grads[1][i]], 0.01, wd, 0.9, 0.95, 1e-8)
        torch.testing.assert_close(p.detach(), expected, rtol=1e-5, atol=1e-6)


def test_norm_gains_are_not_decayed():
    model = tiny_model()
    optimizer = build_optimizer(model, TrainConfig(lr=0.1, weight_decay=0.5), "cpu")
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()  # a zero gradient leaves only the decay
    assert torch.equal(model.norm.weight.detach(), torch.ones(16))
    assert model.blocks[0].attn.qkv.weight.abs().sum() < tiny_model().blocks[0].attn.qkv.weight.abs().sum()


SCHEDULE = TrainConfig(lr=1e-3, min_lr=1e-4, warmup_steps=10, max_steps=110)


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 1e-4),  # warmup: lr * 1 / 10
        (4, 5e-4),  # lr * 5 / 10
        (9, 1e-3),  # last warmup step reaches lr
        (10, 1e-3),  # cosine progress 0
        (35, 1e-4 + 0.5 * (1 + math.cos(math.pi / 4)) * 9e-4),  # progress 1/4: 8.6820e-4
        (60, 5.5e-4),  # progress 1/2: halfway between lr and min_lr
        (110, 1e-4),  # end of decay
        (500, 1e-4),  # after the decay
    ],
)
def test_schedule_values(step, expected):
    assert lr_at(step, SCHEDULE) == pytest.approx(expected, rel=1e-9)


def test_schedule_decay_end_separate_from_max_steps():
    config = TrainConfig(lr=1e-3, min_lr=0.0, warmup_steps=0, max_steps=10, lr_decay_steps=20)
    assert lr_at(10, config) == pytest.approx(5e-4)


def test_schedule_warmup_longer_than_run():
    config = TrainConfig(lr=1e-3, min_lr=1e-4, warmup_steps=10, max_steps=5)
    assert lr_at(3, config) == pytest.approx(4e-4)
    assert lr_at(12, config) == pytest.approx(1e-4)
