"""Train the transformer on the pipeline's token shards, on one CPU or GPU or under torchrun (DDP).

python -m model.train --data RUN_DIR/tokens -o CKPT_DIR [-c CONFIG.yaml] [--preset NAME] [--max-steps N] [--device auto|cpu|cuda]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from model.checkpoint import (
    capture_rng_states, checkpoint_path, copy_tokenizer_files, load_checkpoint, restore_rng_states, save_checkpoint,
)
from model.config import PRESETS, ConfigError, RunConfig, config_from_dict, load_config
from model.data import BatchSampler, Manifest, ShardError, check_same_tokenizer, open_split, read_manifest
from model.distributed import ProcessInfo, average_across_processes, init_distributed, shutdown_distributed
from model.metrics import MetricsWriter
from model.mfu import mfu, peak_tflops
from model.optim import build_optimizer, lr_at
from model.transformer import Transformer

logger = logging.getLogger(__name__)

# Seed offset of the validation sampler, so validation windows differ from the training stream.
VAL_SEED_OFFSET = 1_000_003


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m model.train", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="token directory of a pipeline run (RUN_DIR/tokens)")
    parser.add_argument("-o", "--out", required=True, type=Path, help="checkpoint directory (CKPT_DIR)")
    parser.add_argument("-c", "--config", type=Path, help="YAML file with model: and train: sections")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="base configuration (default: the file's preset, else gpt2-small)")
    parser.add_argument("--max-steps", type=int, help="optimizer steps to train to; overrides train.max_steps")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto uses CUDA when present")
    parser.add_argument("--resume", nargs="?", const="", default=None, metavar="CKPT",
                        help="resume from CKPT (a ckpt.pt file or a directory containing one); with no value, from CKPT_DIR. "
                             "A run also resumes without this flag when CKPT_DIR contains a checkpoint")
    return parser.parse_args(argv)


@dataclass
class Run:
    """Everything the loop needs, built by `setup`."""

    config: RunConfig
    info: ProcessInfo
    device: torch.device
    model: nn.Module  # what forward runs: compiled and DDP-wrapped where enabled
    raw_model: Transformer  # the plain module whose state_dict is saved
    optimizer: torch.optim.Optimizer
    sampler: BatchSampler
    val_shards: list
    manifest: Manifest
    ckpt_dir: Path
    step: int
    autocast: Any


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    info, device = init_distributed(args.device)
    if not info.is_main:
        logging.getLogger().setLevel(logging.WARNING)
    try:
        run = setup(args, info, device)
        train(run)
    finally:
        shutdown_distributed(info)
    return 0


def setup(args: argparse.Namespace, info: ProcessInfo, device: torch.device) -> Run:
    """Read the manifest and configuration, build model, optimizer and sampler, and restore a checkpoint if any."""
    manifest = read_manifest(args.data)
    resume_from = _find_resume_checkpoint(args)
    state = load_checkpoint(resume_from) if resume_from else None

    if state is not None:
        check_same_tokenizer(manifest, state["tokens"]["tokenizer"], state["tokens"]["vocab_size"], resume_from)
        config = _resumed_config(state, args)
    else:
        config = load_config(args.config, args.preset)
        if config.model.vocab_size not in (None, manifest.vocab_size):
            raise ConfigError(f"config key model.vocab_size is {config.model.vocab_size}, but {manifest.path} has "
                              f"vocab_size {manifest.vocab_size}; remove the key (it comes from the manifest)")
        config.model.vocab_size = manifest.vocab_size
        if args.max_steps is not None:
            config = _with_max_steps(config, args.max_steps)

    torch.manual_seed(config.train.seed)
    raw_model = Transformer(config.model).to(device)
    optimizer = build_optimizer(raw_model, config.train, device.type)
    train_shards = open_split(manifest, "train")
    if not train_shards:
        raise ShardError(f"{manifest.path} lists no non-empty train shards")
    sampler = BatchSampler(train_shards, config.model.context_length, config.train.batch_size,
                           seed=config.train.seed, rank=info.rank, world_size=info.world_size)

    step = 0
    if state is not None:
        raw_model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        sampler.load_state_dict(state["data"]["train_sampler"])
        restore_rng_states(state["rng"])
        step = int(state["step"])
        logger.info("resumed from %s at step %d", resume_from, step)

    model = _wrap_model(raw_model, config, info, device)
    return Run(config=config, info=info, device=device, model=model, raw_model=raw_model, optimizer=optimizer,
               sampler=sampler, val_shards=open_split(manifest, "val"), manifest=manifest, ckpt_dir=args.out,
               step=step, autocast=_autocast_context(config, device))


def _find_resume_checkpoint(args: argparse.Namespace) -> Path | None:
    if args.resume:  # an explicit path
        path = Path(args.resume)
        path = checkpoint_path(path) if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(f"--resume {args.resume}: checkpoint not found at {path}")
        return path
    default = checkpoint_path(args.out)
    if default.is_file():
        return default
    if args.resume is not None:
        raise FileNotFoundError(f"--resume: no checkpoint at {default}")
    return None


def _resumed_config(state: dict[str, Any], args: argparse.Namespace) -> RunConfig:
    """Return the checkpoint's configuration; a -c or --preset given too must not change the model's shape."""
    config = config_from_dict(state["config"])
    if args.config is not None or args.preset is not None:
        requested = load_config(args.config, args.preset)
        requested.model.vocab_size = config.model.vocab_size
        if requested.model != config.model:
            raise ConfigError(f"the model section of the requested configuration differs from the checkpoint's "
                              f"({config.model}); resume without -c/--preset or use another output directory")
        if requested.train != config.train:
            logger.warning("resuming with the checkpoint's train settings; the train section of -c/--preset is ignored")
    if args.max_steps is not None:
        config = _with_max_steps(config, args.max_steps)
    return config


def _with_max_steps(config: RunConfig, max_steps: int) -> RunConfig:
    values = config.to_dict()
    values["train"]["max_steps"] = max_steps
    return config_from_dict(values)


def _wrap_model(raw_model: Transformer, config: RunConfig, info: ProcessInfo, device: torch.device) -> nn.Module:
    model: nn.Module = raw_model
    use_compile = config.train.compile == "true" or (config.train.compile == "auto" and device.type == "cuda")
    if use_compile:
        logger.info("compiling the model with torch.compile")
        model = torch.compile(model)
    if info.distributed:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return model


def _autocast_context(config: RunConfig, device: torch.device) -> Any:
    dtype = config.train.dtype
    if dtype == "bfloat16" or (dtype == "auto" and device.type == "cuda"):
        return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def accumulate_gradients(model: nn.Module, sampler: BatchSampler, accum_steps: int,
                         device: torch.device, autocast: Any) -> float:
    """Run forward and backward on `accum_steps` micro-batches, leaving the mean-loss gradient in
    `.grad`; return this process's mean loss. Under DDP, gradients are all-reduced only on the last."""
    total = torch.zeros((), device=device)
    for micro in range(accum_steps):
        x, y = sampler.next_batch()  # (B, T) each
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        last = micro == accum_steps - 1
        sync = contextlib.nullcontext() if last or not isinstance(model, DistributedDataParallel) else model.no_sync()
        with sync:
            with autocast():
                _, loss = model(x, y)
            (loss / accum_steps).backward()
        total += loss.detach().float()  # summed on the device, so the GPU does not wait on each micro-batch
    return total.item() / accum_steps


@torch.no_grad()
def evaluate(run: Run) -> float | None:
    """Return the mean validation loss over `eval_batches` micro-batches of fixed windows, or None without val data."""
    cfg = run.config
    try:
        sampler = BatchSampler(run.val_shards, cfg.model.context_length, cfg.train.batch_size,
                               seed=cfg.train.seed + VAL_SEED_OFFSET, rank=run.info.rank, world_size=run.info.world_size)
    except ShardError as error:
        logger.warning("no validation loss: %s", error)
        return None
    run.model.eval()
    total = 0.0
    for _ in range(cfg.train.eval_batches):
        x, y = sampler.next_batch()
        with run.autocast():
            _, loss = run.model(x.to(run.device), y.to(run.device))
        total += loss.item()
    run.model.train()
    return average_across_processes(total / cfg.train.eval_batches, run.info, run.device)


def train(run: Run) -> None:
    """Run optimizer steps from `run.step` to train.max_steps, logging, evaluating and checkpointing."""
    cfg = run.config.train
    tokens_per_step = cfg.batch_size * cfg.grad_accum_steps * run.info.world_size * run.config.model.context_length
    flops_per_token = run.raw_model.flops_per_token()
    peak = peak_tflops(run.device, cfg.peak_tflops)
    logger.info("model: %s parameters, %.3g training FLOPs per token; %d tokens per step; device %s x%d",
                f"{run.raw_model.num_parameters():,}", flops_per_token, tokens_per_step, run.device, run.info.world_size)
    decay_steps = cfg.lr_decay_steps if cfg.lr_decay_steps is not None else cfg.max_steps
    if cfg.warmup_steps >= decay_steps:
        logger.warning("train.warmup_steps (%d) is not below the decay end (%d): the learning rate only warms up",
                       cfg.warmup_steps, decay_steps)
    if run.step >= cfg.max_steps:
        logger.info("checkpoint is at step %d, train.max_steps is %d: nothing to train", run.step, cfg.max_steps)
        return

    metrics = MetricsWriter(run.ckpt_dir, run.step, cfg.tensorboard) if run.info.is_main else None
    run.model.train()
    while run.step < cfg.max_steps:
        started = time.perf_counter()
        lr = lr_at(run.step, cfg)
        for group in run.optimizer.param_groups:
            group["lr"] = lr

        loss = accumulate_gradients(run.model, run.sampler, cfg.grad_accum_steps, run.device, run.autocast)
        max_norm = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), max_norm).item()
        run.optimizer.step()
        run.optimizer.zero_grad(set_to_none=True)
        run.step += 1

        loss = average_across_processes(loss, run.info, run.device)
        seconds = time.perf_counter() - started
        record = _step_record(run.step, loss, lr, grad_norm, tokens_per_step, seconds, flops_per_token, peak, run.info)
        _log_step(record, run, metrics)
        if run.step % cfg.eval_interval == 0 or run.step == cfg.max_steps:
            _log_validation(run, metrics)
        if run.step % cfg.checkpoint_interval == 0 or run.step == cfg.max_steps:
            _save(run)
    if metrics is not None:
        metrics.close()


def _step_record(step: int, loss: float, lr: float, grad_norm: float, tokens: int, seconds: float,
                 flops_per_token: float, peak: float | None, info: ProcessInfo) -> dict[str, Any]:
    tokens_per_second = tokens / seconds
    return {
        "step": step, "loss": loss, "lr": lr, "grad_norm": grad_norm,
        "tokens_per_second": tokens_per_second, "mfu": mfu(flops_per_token, tokens_per_second, peak, info.world_size),
        "tokens": step * tokens, "seconds": seconds,
    }


def _log_step(record: dict[str, Any], run: Run, metrics: MetricsWriter | None) -> None:
    if metrics is not None:
        metrics.write(record)
    if record["step"] % run.config.train.log_interval == 0 or record["step"] == run.config.train.max_steps:
        mfu_text = "n/a" if record["mfu"] is None else f"{100 * record['mfu']:.1f}%"
        logger.info("step %d/%d | loss %.4f | lr %.2e | grad_norm %.3f | %.0f tokens/s | MFU %s",
                    record["step"], run.config.train.max_steps, record["loss"], record["lr"],
                    record["grad_norm"], record["tokens_per_second"], mfu_text)


def _log_validation(run: Run, metrics: MetricsWriter | None) -> None:
    if run.config.train.eval_batches == 0:
        return
    val_loss = evaluate(run)
    if val_loss is None:
        return
    logger.info("step %d | val_loss %.4f", run.step, val_loss)
    if metrics is not None:
        metrics.write({"step": run.step, "val_loss": val_loss})


def _save(run: Run) -> None:
    if not run.info.is_main:
        return
    copy_tokenizer_files(run.manifest.directory, run.manifest.tokenizer["files"], run.ckpt_dir)
    save_checkpoint(run.ckpt_dir, {
        "step": run.step,
        "model": run.raw_model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "config": run.config.to_dict(),
        "rng": capture_rng_states(),
        "data": {"train_sampler": run.sampler.state_dict()},
        "tokens": {
            "data_dir": str(run.manifest.directory.resolve()),
            "tokenizer": run.manifest.tokenizer,
            "vocab_size": run.manifest.vocab_size,
            "eos_id": run.manifest.eos_id,
            "dtype": run.manifest.dtype,
        },
    })


if __name__ == "__main__":
    from model.cli import run_cli

    raise SystemExit(run_cli(main))
