"""AdamW with decoupled weight decay on matrices only, and the cosine learning-rate schedule with warmup.

Norm gains and biases (every 1-D parameter) are excluded from weight decay.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

from model.config import TrainConfig

logger = logging.getLogger(__name__)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Split parameters into a decayed group (2-D and higher: linear weights, embeddings) and an
    undecayed group (1-D: norm gains, biases). A tied weight appears once."""
    decay, no_decay = [], []
    for param in model.parameters():  # parameters() yields each shared tensor once
        if not param.requires_grad:
            continue
        (decay if param.dim() >= 2 else no_decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, config: TrainConfig, device_type: str) -> torch.optim.AdamW:
    """Return torch.optim.AdamW over `param_groups`, with the fused kernel on CUDA."""
    groups = param_groups(model, config.weight_decay)
    logger.info(
        "AdamW: %d decayed tensors (%d parameters), %d undecayed tensors (%d parameters)",
        len(groups[0]["params"]), sum(p.numel() for p in groups[0]["params"]),
        len(groups[1]["params"]), sum(p.numel() for p in groups[1]["params"]),
    )
    return torch.optim.AdamW(
        groups,
        lr=config.lr,
        betas=(config.beta1, config.beta2),
        eps=config.eps,
        fused=device_type == "cuda",
    )


def lr_at(step: int, config: TrainConfig) -> float:
    """Return the learning rate for optimizer step `step` (0-based).

    Linear warmup from lr / warmup_steps to lr over steps 0 .. warmup_steps - 1, then a
    half-cosine from lr down to min_lr at lr_decay_steps (max_steps when unset), then min_lr.
    """
    decay_steps = config.lr_decay_steps if config.lr_decay_steps is not None else config.max_steps
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if step >= decay_steps:
        return config.min_lr
    progress = (step - config.warmup_steps) / (decay_steps - config.warmup_steps)  # in [0, 1)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
    return config.min_lr + cosine * (config.lr - config.min_lr)
