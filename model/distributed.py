"""Device choice and DDP process-group setup for single-process runs and runs under torchrun.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; without them the run is one process.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)


@dataclass
class ProcessInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """Map `auto`, `cpu` or `cuda` to a device; under torchrun each process takes GPU `local_rank`."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda was requested but torch.cuda.is_available() is False; use --device cpu")
        return torch.device("cuda", local_rank)
    if name == "cpu":
        return torch.device("cpu")
    raise ValueError(f"invalid device {name!r}; expected auto, cpu or cuda")


def init_distributed(device_name: str) -> tuple[ProcessInfo, torch.device]:
    """Join the process group when launched by torchrun (NCCL on CUDA, gloo on CPU); return this process's place and device."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return ProcessInfo(), resolve_device(device_name)

    info = ProcessInfo(
        rank=int(os.environ["RANK"]),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        world_size=int(os.environ["WORLD_SIZE"]),
    )
    device = resolve_device(device_name, info.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    logger.info("joined process group: rank %d of %d on %s", info.rank, info.world_size, device)
    return info, device


def average_across_processes(value: float, info: ProcessInfo, device: torch.device) -> float:
    """Return the mean of `value` over all processes (the value itself in a single-process run)."""
    if not info.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.item() / info.world_size


def shutdown_distributed(info: ProcessInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()
