"""Model and training configuration: dataclasses, named presets and YAML loading with validation.

A run's configuration is a preset, overridden by the `model:` and `train:` sections of a YAML file.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Embedding and output-head rows are padded to a multiple of this, which keeps the head's
# matrix multiply on fast kernel shapes. No target is ever a padding id.
VOCAB_PAD_MULTIPLE = 64


class ConfigError(ValueError):
    """An invalid configuration value; the message names the key, e.g. `model.n_head`."""


@dataclass
class ModelConfig:
    """Transformer shape. `vocab_size` is left unset in files: the trainer takes it from the shard manifest."""

    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    context_length: int = 1024
    ffn_hidden: int | None = None  # None: 8/3 * n_embd rounded up to a multiple of 64
    tie_embeddings: bool = True
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    vocab_size: int | None = None

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def hidden_size(self) -> int:
        """Width of the SwiGLU feed-forward layer."""
        if self.ffn_hidden is not None:
            return self.ffn_hidden
        return _round_up(int(8 * self.n_embd / 3), 64)

    @property
    def padded_vocab_size(self) -> int:
        if self.vocab_size is None:
            raise ConfigError("model.vocab_size is not set; the trainer sets it from the shard manifest")
        return _round_up(self.vocab_size, VOCAB_PAD_MULTIPLE)


@dataclass
class TrainConfig:
    """Optimizer, schedule, batching, evaluation and checkpoint settings."""

    batch_size: int = 16  # sequences per micro-batch on each process
    grad_accum_steps: int = 4  # micro-batches per optimizer step on each process
    max_steps: int = 10000  # optimizer steps; training stops here
    lr_decay_steps: int | None = None  # end of the cosine decay; None uses max_steps
    warmup_steps: int = 500
    lr: float = 6e-4  # peak learning rate, reached at the end of warmup
    min_lr: float = 6e-5  # learning rate after the cosine decay
    weight_decay: float = 0.1  # applied to matrices only (2-D and higher)
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0  # max global gradient norm; 0 disables clipping
    eval_interval: int = 200  # steps between validation-loss evaluations
    eval_batches: int = 20  # micro-batches per validation-loss evaluation
    log_interval: int = 10  # steps between log lines (every step goes to metrics.jsonl)
    checkpoint_interval: int = 1000  # steps between checkpoints; the last step always saves
    seed: int = 1337
    compile: str = "auto"  # auto (on CUDA only), true or false
    dtype: str = "auto"  # auto (bfloat16 autocast on CUDA, float32 on CPU), bfloat16 or float32
    tensorboard: bool = False  # write TensorBoard events to CKPT_DIR/tensorboard
    peak_tflops: float | None = None  # device peak for MFU; None looks the device up


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Overrides of the dataclass defaults. `tiny` is for tests; the GPT-2 shapes follow
# Radford et al. 2019 (small: 12 layers, 768 wide, 12 heads; medium: 24, 1024, 16).
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {
        "model": {"n_layer": 2, "n_head": 2, "n_embd": 32, "context_length": 32},
        "train": {
            "batch_size": 4, "grad_accum_steps": 1, "max_steps": 50, "warmup_steps": 5,
            "lr": 1e-3, "min_lr": 1e-4, "eval_interval": 25, "eval_batches": 2,
            "log_interval": 1, "checkpoint_interval": 25,
        },
    },
    "gpt2-small": {
        "model": {"n_layer": 12, "n_head": 12, "n_embd": 768, "context_length": 1024},
        "train": {},
    },
    "gpt2-medium": {
        "model": {"n_layer": 24, "n_head": 16, "n_embd": 1024, "context_length": 1024},
        "train": {"lr": 3e-4, "min_lr": 3e-5},
    },
}
DEFAULT_PRESET = "gpt2-small"

_CHOICES = {"train.compile": ("auto", "true", "false"), "train.dtype": ("auto", "bfloat16", "float32")}


def _round_up(value: int, multiple: int) -> int:
    return math.ceil(value / multiple) * multiple


def load_config(path: str | Path | None = None, preset: str | None = None) -> RunConfig:
    """Build a RunConfig from a preset and an optional YAML file, and validate it.

    The preset is `preset` if given, else the file's `preset:` key, else `gpt2-small`.
    """
    document: dict[str, Any] = {}
    if path is not None:
        document = _read_yaml(Path(path))
    unknown = set(document) - {"preset", "model", "train"}
    if unknown:
        raise ConfigError(f"unknown top-level config key(s) {sorted(unknown)} in {path}; expected preset, model, train")

    name = preset or document.get("preset") or DEFAULT_PRESET
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")

    sections = {}
    for section in ("model", "train"):
        values = dict(PRESETS[name][section])
        overrides = document.get(section) or {}
        if not isinstance(overrides, dict):
            raise ConfigError(f"config key {section} must be a mapping, got {type(overrides).__name__}")
        values.update(overrides)
        sections[section] = values
    return config_from_dict(sections)


def config_from_dict(sections: dict[str, dict[str, Any]]) -> RunConfig:
    """Build and validate a RunConfig from plain `{"model": {...}, "train": {...}}` values."""
    model = _build_section("model", ModelConfig, sections.get("model", {}))
    train = _build_section("train", TrainConfig, sections.get("train", {}))
    config = RunConfig(model=model, train=train)
    validate(config)
    return config


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml  # imported here so that the model code runs where only torch and numpy exist

    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    with path.open() as f:
        document = yaml.safe_load(f)
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"config file {path} must contain a mapping, got {type(document).__name__}")
    return document


def _build_section(section: str, cls: type, values: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        key = f"{section}.{sorted(unknown)[0]}"
        raise ConfigError(f"unknown config key {key}; valid keys in {section}: {sorted(names)}")
    checked = {name: _check_type(f"{section}.{name}", value, hints[name]) for name, value in values.items()}
    return cls(**checked)


def _check_type(key: str, value: Any, hint: Any) -> Any:
    """Return `value` converted to the field's type, or raise ConfigError naming `key`."""
    allowed = typing.get_args(hint) or (hint,)
    if value is None:
        if type(None) in allowed:
            return None
        raise ConfigError(f"config key {key} must not be null")
    if key in _CHOICES:
        text = str(value).lower()  # YAML reads true/false as booleans
        if text not in _CHOICES[key]:
            raise ConfigError(f"config key {key} must be one of {list(_CHOICES[key])}, got {value!r}")
        return text
    if bool in allowed:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key} must be true or false, got {value!r}")
    if int in allowed:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key} must be an integer, got {value!r}")
    if float in allowed:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"config key {key} must be a number, got {value!r}")
    if str in allowed and isinstance(value, str):
        return value
    raise ConfigError(f"config key {key} has an invalid value {value!r}")


def validate(config: RunConfig) -> None:
    """Check the values' ranges and the relations between them; raise ConfigError naming the key."""
    m, t = config.model, config.train
    for key in ("n_layer", "n_head", "n_embd", "context_length"):
        _require(getattr(m, key) > 0, f"model.{key}", "must be positive", getattr(m, key))
    _require(m.n_embd % m.n_head == 0, "model.n_embd", f"must be divisible by model.n_head ({m.n_head})", m.n_embd)
    _require(m.head_dim % 2 == 0, "model.n_head", "must leave an even head dimension (n_embd / n_head) for RoPE", m.n_head)
    _require(m.ffn_hidden is None or m.ffn_hidden > 0, "model.ffn_hidden", "must be positive or null", m.ffn_hidden)
    _require(m.vocab_size is None or m.vocab_size > 0, "model.vocab_size", "must be positive", m.vocab_size)
    _require(m.rope_theta > 0, "model.rope_theta", "must be positive", m.rope_theta)
    _require(m.norm_eps > 0, "model.norm_eps", "must be positive", m.norm_eps)

    for key in ("batch_size", "grad_accum_steps", "max_steps", "eval_interval", "log_interval", "checkpoint_interval"):
        _require(getattr(t, key) > 0, f"train.{key}", "must be positive", getattr(t, key))
    _require(t.eval_batches >= 0, "train.eval_batches", "must be 0 or more", t.eval_batches)
    _require(t.warmup_steps >= 0, "train.warmup_steps", "must be 0 or more", t.warmup_steps)
    _require(t.lr_decay_steps is None or t.lr_decay_steps > 0, "train.lr_decay_steps", "must be positive or null", t.lr_decay_steps)
    _require(t.lr > 0, "train.lr", "must be positive", t.lr)
    _require(0 <= t.min_lr <= t.lr, "train.min_lr", f"must be between 0 and train.lr ({t.lr})", t.min_lr)
    _require(t.weight_decay >= 0, "train.weight_decay", "must be 0 or more", t.weight_decay)
    for key in ("beta1", "beta2"):
        _require(0 <= getattr(t, key) < 1, f"train.{key}", "must be in [0, 1)", getattr(t, key))
    _require(t.eps > 0, "train.eps", "must be positive", t.eps)
    _require(t.grad_clip >= 0, "train.grad_clip", "must be 0 (off) or positive", t.grad_clip)
    _require(t.peak_tflops is None or t.peak_tflops > 0, "train.peak_tflops", "must be positive or null", t.peak_tflops)


def _require(condition: bool, key: str, rule: str, value: Any) -> None:
    if not condition:
        raise ConfigError(f"config key {key} {rule}, got {value!r}")
