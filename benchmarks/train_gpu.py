"""GPU training throughput and MFU of the gpt2-small preset with bf16 autocast and torch.compile.

Needs only torch and numpy (synthetic random tokens); `--smoke` runs tiny sizes on CPU to check the script.
Usage: python benchmarks/train_gpu.py [--batch-size 16] [--steps 100] [--out train_gpu.json] [--smoke]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import logging
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # runs from a bare checkout, without installing the project
    sys.path.insert(0, str(REPO))

from model.config import PRESETS, ModelConfig, TrainConfig  # noqa: E402
from model.mfu import mfu, peak_tflops  # noqa: E402
from model.optim import build_optimizer  # noqa: E402
from model.transformer import Transformer  # noqa: E402

logger = logging.getLogger(__name__)

GPT2_VOCAB_SIZE = 50257
SMOKE_MODEL = {"n_layer": 2, "n_head": 2, "n_embd": 64, "context_length": 64}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16, help="sequences of 1024 tokens per step (default 16)")
    parser.add_argument("--steps", type=int, default=100, help="timed optimizer steps (default 100)")
    parser.add_argument("--warmup-steps", type=int, default=5, help="untimed steps first; they include compilation")
    parser.add_argument("--no-compile", action="store_true", help="measure eager mode")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    parser.add_argument("--smoke", action="store_true", help="tiny model and few steps on CPU without compile")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.smoke:
        device = torch.device("cpu")
        model_values, batch_size, steps, warmup, use_compile = SMOKE_MODEL, 2, 2, 1, False
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no CUDA device found; run with --smoke to check the script on CPU")
        device = torch.device("cuda")
        model_values = PRESETS["gpt2-small"]["model"]
        batch_size, steps, warmup, use_compile = args.batch_size, args.steps, args.warmup_steps, not args.no_compile
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    config = ModelConfig(**model_values, vocab_size=GPT2_VOCAB_SIZE)
    torch.manual_seed(0)
    raw_model = Transformer(config).to(device)
    optimizer = build_optimizer(raw_model, TrainConfig(), device.type)
    model = torch.compile(raw_model) if use_compile else raw_model
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" else contextlib.nullcontext
    T = config.context_length
    x = torch.randint(0, GPT2_VOCAB_SIZE, (batch_size, T), device=device)  # (B, T)
    y = torch.randint(0, GPT2_VOCAB_SIZE, (batch_size, T), device=device)  # (B, T)

    def step() -> torch.Tensor:
        with autocast():
            _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(raw_model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    started = time.perf_counter()
    for _ in range(warmup):
        step()
    synchronize(device)
    warmup_s = time.perf_counter() - started
    logger.info("warm-up (%d steps, compile=%s) took %.1f s", warmup, use_compile, warmup_s)

    started = time.perf_counter()
    for _ in range(steps):
        loss = step()
    synchronize(device)
    seconds = time.perf_counter() - started

    tokens_per_second = steps * batch_size * T / seconds
    peak = peak_tflops(device)
    utilization = mfu(raw_model.flops_per_token(), tokens_per_second, peak)
    result = {
        "benchmark": "train_gpu",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or 'unknown'})",
        "torch": torch.__version__,
        "smoke": args.smoke,
        "model": model_values, "vocab_size": GPT2_VOCAB_SIZE, "parameters": raw_model.num_parameters(),
        "batch_size": batch_size, "steps": steps, "compile": use_compile, "bf16_autocast": device.type == "cuda",
        "warmup_s": round(warmup_s, 2), "seconds": round(seconds, 3),
        "tokens_per_second": round(tokens_per_second, 1),
        "flops_per_token": raw_model.flops_per_token(), "peak_tflops": peak,
        "mfu": None if utilization is None else round(utilization, 4),
        "final_loss": round(loss.item(), 4),
        "max_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None,
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    return 0


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


if __name__ == "__main__":
    raise SystemExit(main())
