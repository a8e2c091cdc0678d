"""Checkpoints: one `ckpt.pt` per run directory with model, optimizer, step, RNG states and data position.

Everything is stored as tensors and plain Python values, so `torch.load(weights_only=True)` reads it.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "ckpt.pt"
CHECKPOINT_FORMAT = 1


def checkpoint_path(ckpt_dir: str | Path) -> Path:
    return Path(ckpt_dir) / CHECKPOINT_NAME


def capture_rng_states() -> dict[str, Any]:
    """Return the Python, NumPy, torch and CUDA generator states as lists and tensors."""
    version, mt_state, gauss_next = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    states: dict[str, Any] = {
        "python": [version, list(mt_state), gauss_next],
        "numpy": [np_name, torch.from_numpy(np_keys.astype(np.int64)), np_pos, np_has_gauss, np_gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Set the generators from `capture_rng_states`' output; CUDA states only when CUDA is present."""
    version, mt_state, gauss_next = states["python"]
    random.setstate((version, tuple(mt_state), gauss_next))
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = states["numpy"]
    np.random.set_state((np_name, np_keys.numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss))
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(ckpt_dir: Path, state: dict[str, Any]) -> Path:
    """Write `state` to ckpt_dir/ckpt.pt atomically (a temporary file, then os.replace)."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(ckpt_dir)
    tmp = path.with_suffix(".pt.tmp")
    torch.save({"format": CHECKPOINT_FORMAT, **state}, tmp)
    os.replace(tmp, path)
    logger.info("saved checkpoint %s at step %d", path, state["step"])
    return path


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint file with `weights_only=True` and check its format."""
    state = torch.load(path, map_location=map_location, weights_only=True)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: checkpoint format {state.get('format')!r} is not supported (expected {CHECKPOINT_FORMAT})")
    return state


def copy_tokenizer_files(tokens_dir: Path, files: list[str], ckpt_dir: Path) -> None:
    """Copy the tokenizer files (paths relative to the tokens directory) to the same relative
    paths under ckpt_dir, so that generation works after the shards are gone. Existing copies are kept."""
    for relative in files:
        source = tokens_dir / relative
        target = ckpt_dir / relative
        if target.exists():
            continue
        if not source.is_file():
            logger.warning("tokenizer file %s not found; model.generate will need the shards' directory", source)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
