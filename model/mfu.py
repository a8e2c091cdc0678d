"""Model FLOPs utilization: the detected device's peak bf16 dense FLOP/s and the MFU of a measured rate.

Peaks are dense (no 2:4 sparsity) bf16 tensor-core figures with fp32 accumulation from NVIDIA's data sheets.
"""

from __future__ import annotations

import logging
import re

import torch

logger = logging.getLogger(__name__)

# (pattern matched against torch.cuda.get_device_name, peak bf16 dense TFLOP/s). The first match
# wins, so the PCIe H100 comes before the SXM one. Sources: NVIDIA H100 and H200 data sheets
# (SXM 989, PCIe 756), A100 data sheet (312, all variants), L4 (121), A10 (125), L40S (362),
# Ada Lovelace architecture whitepaper for the GeForce RTX 4090 (165.2 with fp32 accumulation).
GPU_PEAK_TFLOPS: list[tuple[str, float]] = [
    (r"H100.*PCIe", 756.0),
    (r"H100", 989.0),
    (r"H200", 989.0),
    (r"A100", 312.0),
    (r"L40S", 362.0),
    (r"\bL4\b", 121.0),
    (r"\bA10\b", 125.0),  # not the A10G, whose figure differs
    (r"RTX 4090", 165.2),
]


def peak_tflops(device: torch.device, override: float | None = None) -> float | None:
    """Return the peak bf16 dense TFLOP/s of `device`, or None when it is unknown.

    A CPU returns None: its peak depends on the core count, clock and vector units, which
    torch does not report, so MFU on CPU is shown as "n/a" unless `override` is set.
    """
    if override is not None:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for pattern, tflops in GPU_PEAK_TFLOPS:
        if re.search(pattern, name):
            return tflops
    logger.warning("no peak FLOP/s known for GPU %r; MFU is n/a (set train.peak_tflops to compute it)", name)
    return None


def mfu(flops_per_token: float, tokens_per_second: float, peak: float | None, world_size: int = 1) -> float | None:
    """Return achieved / peak FLOP/s over all `world_size` devices, or None when the peak is unknown."""
    if peak is None:
        return None
    return flops_per_token * tokens_per_second / (peak * 1e12 * world_size)
