"""CPU training throughput of our transformer beside a nanoGPT-style baseline of the same size, in one run.

Usage: python -m benchmarks.train_cpu [--n-layer 4 --n-embd 256 ...] [--out bench-results/train_cpu.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # also runs as `python benchmarks/train_cpu.py`
    sys.path.insert(0, str(REPO))

from benchmarks import _machine  # noqa: E402
from model.config import ModelConfig, TrainConfig  # noqa: E402
from model.optim import build_optimizer  # noqa: E402
from model.transformer import Transformer  # noqa: E402

logger = logging.getLogger(__name__)


class BaselineBlock(nn.Module):
    """A GPT-2 layer: LayerNorm with bias, biased linear layers, GELU MLP of width 4 * n_embd."""

    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.ln_1 = nn.LayerNorm(n_embd)
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.mlp_proj = nn.Linear(4 * n_embd, n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)  # (B, T, C) each
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))  # (B, T, C)


class BaselineGPT(nn.Module):
    """The nanoGPT-style reference: learned positions, LayerNorm, GELU, tied head, same vocabulary padding."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.padded_vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.context_length, config.n_embd)
        self.blocks = nn.ModuleList(BaselineBlock(config.n_embd, config.n_head) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.padded_vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        T = idx.size(1)
        x = self.wte(idx) + self.wpe(torch.arange(T))  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))  # (B, T, V_padded)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss


def time_steps(model: nn.Module, optimizer: torch.optim.Optimizer, batches: list, steps: int) -> _machine.Timer:
    """Time `steps` full training steps (forward, backward, AdamW) on pre-built batches."""
    with _machine.Timer() as timer:
        for i in range(steps):
            x, y = batches[i % len(batches)]
            _, loss = model(x, y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    return timer


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--n-embd", type=int, default=256)
    parser.add_argument("--context-length", type=int, default=256)
    parser.add_argument("--vocab-size", type=int, default=50257, help="default: GPT-2's, the pipeline's default tokenizer")
    parser.add_argument("--batch-size", type=int, default=4, help="sequences per step")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per model per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best round is reported")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=_machine.RESULTS_DIR / "train_cpu.json", help="JSON result path")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    config = ModelConfig(n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd,
                         context_length=args.context_length, vocab_size=args.vocab_size)
    torch.manual_seed(0)
    models = {"ours": Transformer(config), "nanogpt_baseline": BaselineGPT(config)}
    optimizers = {name: build_optimizer(m, TrainConfig(), "cpu") for name, m in models.items()}
    batches = [(torch.randint(0, args.vocab_size, (args.batch_size, args.context_length)),
                torch.randint(0, args.vocab_size, (args.batch_size, args.context_length))) for _ in range(4)]
    tokens = args.steps * args.batch_size * args.context_length

    rates: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in models}
    for name in models:  # warm-up: allocator, AdamW state
        time_steps(models[name], optimizers[name], batches, 1)
    for round_index in range(args.rounds):
        order = list(models) if round_index % 2 == 0 else list(reversed(models))  # alternate to share drift
        for name in order:
            timer = time_steps(models[name], optimizers[name], batches, args.steps)
            rates[name]["wall"].append(tokens / timer.wall_s)
            rates[name]["cpu"].append(tokens / timer.cpu_s)
            logger.info("round %d %s: %.0f tokens/s (%.0f tokens per CPU-second)", round_index + 1, name,
                        rates[name]["wall"][-1], rates[name]["cpu"][-1])

    result = summarize(args, config, models, rates)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    ours, base = result["models"]["ours"], result["models"]["nanogpt_baseline"]
    print(f"ours:             {ours['tokens_per_second_best']:9.0f} tokens/s  ({ours['parameters']:,} parameters)")
    print(f"nanoGPT baseline: {base['tokens_per_second_best']:9.0f} tokens/s  ({base['parameters']:,} parameters)")
    print(f"ratio ours / baseline: {result['ratio_best']:.3f} (best rounds), {result['ratio_cpu']:.3f} (per CPU-second)")
    print(f"machine: {result['machine']['cpu_model']}, {result['machine']['logical_cpus']} logical CPUs, "
          f"{result['torch_threads']} torch threads, load {result['machine']['load_average_1m']}; wrote {args.out}")
    return 0


def summarize(args: argparse.Namespace, config: ModelConfig, models: dict, rates: dict) -> dict:
    """Return the JSON result: best and median rates per model, their ratios and the machine."""
    per_model = {}
    for name, model in models.items():
        per_model[name] = {
            "parameters": sum(p.numel() for p in model.parameters()),
            "tokens_per_second_best": round(max(rates[name]["wall"]), 1),
            "tokens_per_second_median": round(statistics.median(rates[name]["wall"]), 1),
            "tokens_per_cpu_second_best": round(max(rates[name]["cpu"]), 1),
        }
    ours, base = per_model["ours"], per_model["nanogpt_baseline"]
    return {
        "benchmark": "train_cpu",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m benchmarks.train_cpu " + " ".join(sys.argv[1:]),
        "machine": _machine.machine_facts(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "config": {"n_layer": config.n_layer, "n_head": config.n_head, "n_embd": config.n_embd,
                   "context_length": config.context_length, "vocab_size": config.vocab_size,
                   "batch_size": args.batch_size, "steps": args.steps, "rounds": args.rounds},
        "models": per_model,
        "ratio_best": round(ours["tokens_per_second_best"] / base["tokens_per_second_best"], 3),
        "ratio_cpu": round(ours["tokens_per_cpu_second_best"] / base["tokens_per_cpu_second_best"], 3),
        "flops_per_token_ours": models["ours"].flops_per_token(),
    }


if __name__ == "__main__":
    raise SystemExit(main())
