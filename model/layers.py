"""The transformer's building blocks: RMSNorm, rotary position embeddings, causal attention, SwiGLU.

Each unit is small and has a test against a plain reference in tests/test_model_layers.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.config import ModelConfig


class RMSNorm(nn.Module):
    """Root-mean-square normalization with a learned gain (Zhang and Sennrich, 2019); no bias, no mean."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalize in float32 so that bf16 inputs do not lose the small mean square.
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


def rope_frequencies(head_dim: int, context_length: int, theta: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the cos and sin tables of rotary embeddings, each (context_length, head_dim // 2).

    Pair i of a head rotates by angle `position * theta ** (-2i / head_dim)` (Su et al., RoFormer).
    """
    inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)  # (D/2,)
    positions = torch.arange(context_length, dtype=torch.float64)  # (T,)
    angles = torch.outer(positions, inv_freq)  # (T, D/2)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each (x[i], x[i + D/2]) pair of x (B, H, T, D) by the angles of its position.

    This is the half-split layout (GPT-NeoX, Llama in Hugging Face): the first and second
    halves of the head dimension form the pairs, which avoids an interleaving copy.
    """
    T = x.size(-2)
    cos, sin = cos[:T], sin[:T]  # (T, D/2)
    x1, x2 = x.float().chunk(2, dim=-1)  # (B, H, T, D/2) each
    rotated = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)  # (B, H, T, D)
    return rotated.type_as(x)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention with RoPE on queries and keys and a causal mask, through SDPA."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.n_head = config.n_head
        self.head_dim = config.head_dim
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.n_head, self.head_dim)  # (B, T, 3, H, D)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, H, T, D) each
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, D)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self.proj(y)


class SwiGLU(nn.Module):
    """Gated feed-forward layer `w2(silu(w1 x) * w3 x)` (Shazeer, 2020), without biases."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)  # gate
        self.w3 = nn.Linear(dim, hidden, bias=False)  # value
        self.w2 = nn.Linear(hidden, dim, bias=False)  # back to the residual stream

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))  # (B, T, C)


class Block(nn.Module):
    """One pre-norm transformer layer: x + attn(norm(x)), then x + ffn(norm(x))."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.attn_norm = RMSNorm(config.n_embd, config.norm_eps)
        self.attn = CausalSelfAttention(config)
        self.ffn_norm = RMSNorm(config.n_embd, config.norm_eps)
        self.ffn = SwiGLU(config.n_embd, config.hidden_size)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin)  # (B, T, C)
        x = x + self.ffn(self.ffn_norm(x))  # (B, T, C)
        return x
