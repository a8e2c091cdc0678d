"""Sample text from a trained checkpoint with temperature and top-p (nucleus) sampling.

python -m model.generate --checkpoint CKPT_DIR --prompt TEXT [--max-new-tokens N] [--temperature T] [--top-p P] [--seed S]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from model.data import ShardError

from model.checkpoint import checkpoint_path, load_checkpoint
from model.config import config_from_dict
from model.distributed import resolve_device
from model.tokenizer import Tokenizer, load_tokenizer
from model.transformer import Transformer

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m model.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint directory (CKPT_DIR) or ckpt.pt file")
    parser.add_argument("--prompt", required=True, help="text to continue")
    parser.add_argument("--max-new-tokens", type=int, default=100, help="tokens to generate (default 100)")
    parser.add_argument("--temperature", type=float, default=0.8, help="softmax temperature; 0 picks the most likely token")
    parser.add_argument("--top-p", type=float, default=0.95, help="sample from the smallest set of tokens whose probability reaches P")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling generator")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args(argv)
    if args.temperature < 0:
        parser.error(f"--temperature must be 0 or more, got {args.temperature}")
    if not 0 < args.top_p <= 1:
        parser.error(f"--top-p must be in (0, 1], got {args.top_p}")
    if args.max_new_tokens < 0:
        parser.error(f"--max-new-tokens must be 0 or more, got {args.max_new_tokens}")
    return args


def sample_next(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Pick one token id per row of logits (B, V): greedy at temperature 0, else from the
    temperature-scaled distribution restricted to its top-p nucleus. Returns ids (B, 1)."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    probs = torch.softmax(logits.float() / temperature, dim=-1)  # (B, V)
    sorted_probs, sorted_ids = probs.sort(dim=-1, descending=True)  # (B, V) each
    # Drop a token when the tokens more likely than it already reach top_p; the first always stays.
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs  # (B, V)
    sorted_probs = sorted_probs.masked_fill(mass_before >= top_p, 0.0)
    choice = torch.multinomial(sorted_probs, num_samples=1, generator=generator)  # (B, 1), renormalizes
    return sorted_ids.gather(-1, choice)


@torch.no_grad()
def generate(model: Transformer, ids: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_p: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Append `max_new_tokens` sampled ids to ids (B, T); the model conditions on the last context_length tokens.

    NOTE: each new token runs the full window again (no KV cache), which is fine for short samples.
    """
    model.eval()
    vocab_size = model.config.vocab_size
    for _ in range(max_new_tokens):
        window = ids[:, -model.config.context_length :]  # (B, <=T)
        logits, _ = model(window)  # (B, T, V_padded)
        next_id = sample_next(logits[:, -1, :vocab_size], temperature, top_p, generator)  # (B, 1)
        ids = torch.cat((ids, next_id), dim=1)
    return ids


def load_model(path: Path, device: torch.device) -> tuple[Transformer, dict]:
    """Rebuild the model from a checkpoint file; return it with the checkpoint's `tokens` entry."""
    state = load_checkpoint(path, map_location=device)
    config = config_from_dict(state["config"])
    model = Transformer(config.model).to(device)
    model.load_state_dict(state["model"])
    return model, state["tokens"]


def find_tokenizer(tokens: dict, ckpt_dir: Path) -> Tokenizer:
    """Load the run's tokenizer from the copy in the checkpoint directory, else from the shards' directory."""
    entry = tokens["tokenizer"]
    if all((ckpt_dir / f).is_file() for f in entry["files"]):
        return load_tokenizer(entry, ckpt_dir)
    logger.info("tokenizer files not in %s; reading them from %s", ckpt_dir, tokens["data_dir"])
    return load_tokenizer(entry, tokens["data_dir"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    path = checkpoint_path(args.checkpoint) if args.checkpoint.is_dir() else args.checkpoint
    if not path.is_file():
        raise ShardError(f"checkpoint not found: {path}; pass the -o directory of python -m model.train")

    device = resolve_device(args.device)
    model, tokens = load_model(path, device)
    tokenizer = find_tokenizer(tokens, path.parent)
    prompt_ids = tokenizer.encode(args.prompt) or [tokens["eos_id"]]  # an empty prompt starts a new document
    generator = torch.Generator(device=device).manual_seed(args.seed)

    ids = torch.tensor([prompt_ids], dtype=torch.long, device=device)  # (1, T)
    out = generate(model, ids, args.max_new_tokens, args.temperature, args.top_p, generator)
    print(tokenizer.decode(until_eos(out[0].tolist(), len(prompt_ids), tokens["eos_id"])))
    return 0


def until_eos(ids: list[int], prompt_length: int, eos_id: int) -> list[int]:
    """Return the prompt (without a leading EOS) and the generated ids up to the first EOS."""
    prompt = [token for token in ids[:prompt_length] if token != eos_id]
    generated = ids[prompt_length:]
    if eos_id in generated:
        generated = generated[:generated.index(eos_id)]
    return prompt + generated


if __name__ == "__main__":
    from model.cli import run_cli

    raise SystemExit(run_cli(main))
