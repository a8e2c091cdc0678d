"""Tests of the model's building blocks against plain reference implementations and hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from model.config import ModelConfig
from model.layers import CausalSelfAttention, RMSNorm, SwiGLU, apply_rope, rope_frequencies
from model.transformer import INIT_STD, Transformer
from test_model_data import single_thread  # noqa: F401 (autouse fixture)


def test_rmsnorm_hand_computed():
    norm = RMSNorm(2, eps=0.0)
    out = norm(torch.tensor([[3.0, 4.0]]))
    rms = math.sqrt((9 + 16) / 2)
    assert out[0, 0].item() == pytest.approx(3 / rms, rel=1e-6)
    assert out[0, 1].item() == pytest.approx(4 / rms, rel=1e-6)


def test_rmsnorm_matches_formula_with_gain():
    torch.manual_seed(0)
    norm = RMSNorm(16, eps=1e-5)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(16))
    x = torch.randn(3, 5, 16)
    expected = x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + 1e-5) * norm.weight
    torch.testing.assert_close(norm(x), expected)


def test_rope_hand_computed():
    # head_dim 4, theta 100: pair 0 turns by 1 rad per position, pair 1 by 100 ** -0.5 = 0.1 rad.
    cos, sin = rope_frequencies(head_dim=4, context_length=3, theta=100.0)
    x = torch.zeros(1, 1, 3, 4)
    x[..., 0] = 1.0  # pair 0 is (x0, x2) = (1, 0)
    x[..., 3] = 1.0  # pair 1 is (x1, x3) = (0, 1)
    out = apply_rope(x, cos, sin)[0, 0, 2]  # position 2
    expected = torch.tensor([math.cos(2.0), -math.sin(0.2), math.sin(2.0), math.cos(0.2)])
    torch.testing.assert_close(out, expected)


def test_rope_position_zero_is_identity():
    cos, sin = rope_frequencies(head_dim=8, context_length=4)
    x = torch.randn(2, 3, 4, 8)
    torch.testing.assert_close(apply_rope(x, cos, sin)[:, :, 0], x[:, :, 0])


def test_rope_preserves_norm():
    torch.manual_seed(0)
    cos, sin = rope_frequencies(head_dim=16, context_length=64)
    x = torch.randn(2, 3, 64, 16)
    rotated = apply_rope(x, cos, sin)
    torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1))


def test_rope_dot_product_depends_on_offset_only():
    torch.manual_seed(0)
    cos, sin = rope_frequencies(head_dim=16, context_length=32)
    q = torch.randn(16).expand(1, 1, 32, 16)  # the same query at every position
    k = torch.randn(16).expand(1, 1, 32, 16)
    q_rot, k_rot = apply_rope(q, cos, sin)[0, 0], apply_rope(k, cos, sin)[0, 0]  # (T, D)
    offset_3 = [q_rot[m] @ k_rot[m - 3] for m in (3, 10, 31)]
    for value in offset_3[1:]:
        assert value.item() == pytest.approx(offset_3[0].item(), rel=1e-4, abs=1e-5)
    assert (q_rot[10] @ k_rot[3]).item() != pytest.approx(offset_3[0].item(), rel=1e-3)


def reference_attention(module: CausalSelfAttention, x: torch.Tensor, cos, sin) -> torch.Tensor:
    """Attention written out: explicit scores, a -inf causal mask and softmax."""
    B, T, C = x.shape
    H, D = module.n_head, module.head_dim
    q, k, v = (x @ module.qkv.weight.T).split(C, dim=-1)
    q, k, v = (t.view(B, T, H, D).transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    scores = q @ k.transpose(-2, -1) / math.sqrt(D)  # (B, H, T, T)
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
    y = (weights @ v).transpose(1, 2).reshape(B, T, C)
    return y @ module.proj.weight.T


def test_attention_matches_plain_softmax():
    torch.manual_seed(0)
    config = ModelConfig(n_layer=1, n_head=4, n_embd=32, context_length=16)
    attention = CausalSelfAttention(config)
    cos, sin = rope_frequencies(config.head_dim, config.context_length)
    x = torch.randn(2, 16, 32)
    torch.testing.assert_close(attention(x, cos, sin), reference_attention(attention, x, cos, sin), atol=1e-5, rtol=1e-4)


def test_attention_ignores_future_tokens():
    torch.manual_seed(0)
    config = ModelConfig(n_layer=1, n_head=2, n_embd=16, context_length=8)
    attention = CausalSelfAttention(config)
    cos, sin = rope_frequencies(config.head_dim, config.context_length)
    x = torch.randn(1, 8, 16)
    changed = x.clone()
    changed[:, 5:] = torch.randn(1, 3, 16)
    torch.testing.assert_close(attention(x, cos, sin)[:, :5], attention(changed, cos, sin)[:, :5])
    assert not torch.allclose(attention(x, cos, sin)[:, 5:], attention(changed, cos, sin)[:, 5:])


def test_swiglu_hand_computed():
    ffn = SwiGLU(1, 1)
    with torch.no_grad():
        ffn.w1.weight.fill_(1.0)
        ffn.w3.weight.fill_(2.0)
        ffn.w2.weight.fill_(3.0)
    silu_1 = 1.0 / (1.0 + math.exp(-1.0))
    assert ffn(torch.tensor([[1.0]])).item() == pytest.approx(3.0 * 2.0 * silu_1, rel=1e-6)


def test_swiglu_matches_formula():
    torch.manual_seed(0)
    ffn = SwiGLU(8, 24)
    x = torch.randn(4, 8)
    gate = x @ ffn.w1.weight.T
    expected = (gate * torch.sigmoid(gate) * (x @ ffn.w3.weight.T)) @ ffn.w2.weight.T
    torch.testing.assert_close(ffn(x), expected)


def test_residual_projections_init_scaled_by_depth():
    torch.manual_seed(0)
    config = ModelConfig(n_layer=8, n_head=4, n_embd=256, context_length=16, vocab_size=512)
    model = Transformer(config)
    expected = INIT_STD / math.sqrt(2 * 8)
    assert model.blocks[0].attn.proj.weight.std().item() == pytest.approx(expected, rel=0.05)
    assert model.blocks[7].ffn.w2.weight.std().item() == pytest.approx(expected, rel=0.05)
    assert model.blocks[0].attn.qkv.weight.std().item() == pytest.approx(INIT_STD, rel=0.05)
    assert torch.equal(model.norm.weight, torch.ones(256))


def test_tied_head_shares_embedding():
    config = ModelConfig(n_layer=1, n_head=2, n_embd=16, context_length=8, vocab_size=100)
    tied = Transformer(config)
    untied = Transformer(ModelConfig(**{**config.__dict__, "tie_embeddings": False}))
    assert tied.head.weight is tied.embed.weight
    assert untied.head.weight is not untied.embed.weight
    assert untied.num_parameters() - tied.num_parameters() == 128 * 16  # 100 padded to 128 rows


def test_vocabulary_padded_to_multiple_of_64():
    model = Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=16, context_length=8, vocab_size=50257))
    assert model.embed.weight.shape == (50304, 16)
    logits, loss = model(torch.zeros(1, 4, dtype=torch.long), torch.full((1, 4), 50256))
    assert logits.shape == (1, 4, 50304)
    assert torch.isfinite(loss)


def test_loss_is_mean_cross_entropy_of_every_target():
    torch.manual_seed(0)
    model = Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=16, context_length=8, vocab_size=70))
    idx = torch.randint(0, 70, (2, 8))
    targets = torch.randint(0, 70, (2, 8))
    logits, loss = model(idx, targets)
    log_probs = torch.log_softmax(logits, dim=-1)  # (B, T, 128): over the padded vocabulary
    expected = -log_probs.gather(-1, targets.unsqueeze(-1)).mean()
    torch.testing.assert_close(loss, expected)
