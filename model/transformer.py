"""The decoder-only transformer language model: embedding, pre-norm blocks, final norm, output head.

`Transformer(config)(idx, targets)` returns logits over the padded vocabulary and the mean cross-entropy.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from model.config import ModelConfig
from model.layers import Block, RMSNorm, rope_frequencies

INIT_STD = 0.02


class Transformer(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        vocab = config.padded_vocab_size
        self.embed = nn.Embedding(vocab, config.n_embd)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm = RMSNorm(config.n_embd, config.norm_eps)
        self.head = nn.Linear(config.n_embd, vocab, bias=False)
        if config.tie_embeddings:
            self.head.weight = self.embed.weight

        # Recomputed from the config on load, so not stored in checkpoints.
        cos, sin = rope_frequencies(config.head_dim, config.context_length, config.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)  # (T, D/2)
        self.register_buffer("rope_sin", sin, persistent=False)  # (T, D/2)

        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialize weights N(0, 0.02), and the layers that write into the residual stream
        with std 0.02 / sqrt(2 * n_layer), so the residual's variance does not grow with depth
        (GPT-2's scheme). Norm gains start at 1."""
        residual_std = INIT_STD / math.sqrt(2 * self.config.n_layer)
        for name, param in self.named_parameters():
            if param.dim() < 2:
                nn.init.ones_(param)
            elif name.endswith(("attn.proj.weight", "ffn.w2.weight")):
                nn.init.normal_(param, mean=0.0, std=residual_std)
            else:
                nn.init.normal_(param, mean=0.0, std=INIT_STD)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return logits (B, T, padded_vocab_size) for token ids idx (B, T), and the mean
        cross-entropy against targets (B, T) when given. Every target counts, so none is ignored."""
        B, T = idx.shape
        if T > self.config.context_length:
            raise ValueError(f"sequence length {T} exceeds model.context_length {self.config.context_length}")
        x = self.embed(idx)  # (B, T, C)
        for block in self.blocks:
            x = block(x, self.rope_cos, self.rope_sin)  # (B, T, C)
        x = self.norm(x)  # (B, T, C)
        logits = self.head(x)  # (B, T, V_padded)

        loss = None
        if targets is not None:
            # The softmax runs over the padded vocabulary, as slicing off the padding copies the
            # largest tensor of the step. Padding ids are never targets, so training drives
            # their logits down; model.generate samples from the real ids only.
            loss = F.cross_entropy(logits.view(B * T, -1), targets.reshape(B * T))
        return logits, loss

    def num_parameters(self) -> int:
        """Count distinct parameters (a tied embedding and head count once)."""
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self) -> float:
        """Estimate training FLOPs per token (forward + backward) with the PaLM paper's appendix B
        formula, 6 * N + 12 * n_layer * n_embd * context_length. N counts the weights used in matrix
        multiplies: the head is included, an untied embedding lookup and the norm gains are not."""
        cfg = self.config
        n_matmul = sum(p.numel() for p in self.parameters() if p.dim() >= 2)
        if not cfg.tie_embeddings:
            n_matmul -= self.embed.weight.numel()
        attention = 12 * cfg.n_layer * cfg.n_embd * cfg.context_length
        return 6 * n_matmul + attention
