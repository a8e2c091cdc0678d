"""Tests of data-parallel training on CPU: two gloo processes against one process on the same global batch.

One test spawns workers that call the trainer's gradient step; one runs `model.train` under torchrun.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from model.config import ModelConfig
from model.data import BatchSampler, open_split, read_manifest
from model.metrics import read_metrics
from model.train import accumulate_gradients
from model.transformer import Transformer
from test_model_data import random_tokens, write_token_dir, single_thread  # noqa: F401 (autouse fixture)

VOCAB = 128
CONFIG = ModelConfig(n_layer=2, n_head=2, n_embd=32, context_length=16, vocab_size=VOCAB)
BATCH_PER_RANK = 3
ACCUM_STEPS = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gradients(model: torch.nn.Module, tokens_dir: str, rank: int, world_size: int) -> tuple[float, dict[str, torch.Tensor]]:
    shards = open_split(read_manifest(tokens_dir), "train")
    sampler = BatchSampler(shards, CONFIG.context_length, BATCH_PER_RANK * 2 // world_size, seed=7,
                           rank=rank, world_size=world_size)
    loss = accumulate_gradients(model, sampler, ACCUM_STEPS, torch.device("cpu"), contextlib.nullcontext)
    module = model.module if isinstance(model, DistributedDataParallel) else model
    return loss, {name: p.grad.clone() for name, p in module.named_parameters()}


def ddp_worker(rank: int, world_size: int, port: int, tokens_dir: str, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        torch.manual_seed(0)
        model = DistributedDataParallel(Transformer(CONFIG))
        loss, grads = gradients(model, tokens_dir, rank, world_size)
        torch.save({"loss": loss, "grads": grads}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture()
def tokens_dir(tmp_path):
    return write_token_dir(tmp_path / "tokens", [random_tokens(4000, VOCAB, seed=11)], [random_tokens(500, VOCAB, seed=12)],
                           vocab_size=VOCAB)


def test_ddp_gradient_matches_single_process(tokens_dir, tmp_path):
    mp.spawn(ddp_worker, args=(2, free_port(), str(tokens_dir), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]

    torch.manual_seed(0)
    single_loss, single_grads = gradients(Transformer(CONFIG), str(tokens_dir), rank=0, world_size=1)

    assert (ranks[0]["loss"] + ranks[1]["loss"]) / 2 == pytest.approx(single_loss, rel=1e-5)
    assert ranks[0]["loss"] != pytest.approx(ranks[1]["loss"], rel=1e-6)  # each rank saw other rows
    for name, grad in single_grads.items():
        torch.testing.assert_close(ranks[0]["grads"][name], grad, rtol=1e-4, atol=1e-6, msg=f"rank 0 {name}")
        torch.testing.assert_close(ranks[1]["grads"][name], grad, rtol=1e-4, atol=1e-6, msg=f"rank 1 {name}")


def test_torchrun_loss_matches_single_process(tokens_dir, tmp_path):
    template = ("preset: tiny\nmodel: {{n_layer: 2, n_head: 2, n_embd: 32, context_length: 16}}\n"
                "train: {{batch_size: {batch}, grad_accum_steps: 2, max_steps: 3, eval_batches: 1, eval_interval: 3}}\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def train(out: str, nproc: int, batch: int) -> dict[int, float]:
        config = tmp_path / f"{out}.yaml"
        config.write_text(template.format(batch=batch))
        launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
                    "--master_port", str(free_port())] if nproc > 1 else [sys.executable]
        command = [*launcher, "-m", "model.train", "--data", str(tokens_dir), "-o", str(tmp_path / out),
                   "-c", str(config), "--device", "cpu"]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        return {r["step"]: r["loss"] for r in read_metrics(tmp_path / out) if "loss" in r}

    two = train("two", nproc=2, batch=2)  # 2 processes x 2 rows = the 4 rows of the single process
    one = train("one", nproc=1, batch=4)
    assert sorted(two) == [1, 2, 3]
    for step in (1, 2, 3):
        assert two[step] == pytest.approx(one[step], rel=1e-5), f"step {step}"
