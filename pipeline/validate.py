"""Checks of a loaded config and the input files that run before Ray starts.

`pipeline.config` checks key names and types while it loads. This pass checks what types
cannot: that model and tokenizer files exist, that limits are positive, that every input file
can be opened. Each problem raises `ConfigError` naming the key or path and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.config import ConfigError

POSITIVE_KEYS = [
    ("read", "max_body_bytes"),
    ("read", "record_timeout_s"),
    ("extract", "max_html_bytes"),
    ("extract", "max_line_bytes"),
]
TOKENIZER_FILE_KEYS = ["vocab_file", "merges_file", "tokenizer_file"]


def validate_run(config: dict[str, Any], inputs: list[str]) -> None:
    """Raise ConfigError for the first problem in `config` or `inputs` (the expanded file list)."""
    check_limits(config)
    check_model_files(config)
    check_stage_settings(config)
    check_run_wide_settings(config)
    check_inputs(inputs)


def check_stage_settings(config: dict[str, Any]) -> None:
    """Build every enabled stage once, so a bad stage option fails before any file is read.

    Stages load their models lazily, so this costs no model load.
    """
    from pipeline.process import build_stages

    try:
        build_stages(config)
    except ConfigError:
        raise
    except (TypeError, ValueError) as error:
        raise ConfigError(f"invalid stage configuration: {error}; fix the key in your -c file") from error


def check_run_wide_settings(config: dict[str, Any]) -> None:
    """Check the dedup and tokenize sections with the same rules their phases apply."""
    from pipeline.dedup.lines import resolve_config as resolve_lines
    from pipeline.dedup.near import resolve_config as resolve_minhash

    dedup = config.get("dedup", {})
    try:
        if dedup.get("minhash", {}).get("enabled"):
            resolve_minhash(dedup["minhash"])
        if dedup.get("lines", {}).get("enabled"):
            resolve_lines(dedup["lines"])
    except ValueError as error:
        raise ConfigError(f"config: {error}") from error

    tokenize = config.get("tokenize", {})
    if not tokenize.get("enabled", True):
        return
    shard_tokens = tokenize.get("shard_tokens")
    if shard_tokens is not None and shard_tokens < 1:
        raise ConfigError(f"config key 'tokenize.shard_tokens' must be at least 1, got {shard_tokens!r}")
    val_fraction = tokenize.get("val_fraction")
    if val_fraction is not None and not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"config key 'tokenize.val_fraction' must be in [0, 1), got {val_fraction!r}; "
                          "it is the share of documents held out for validation")


def check_limits(config: dict[str, Any]) -> None:
    for section, key in POSITIVE_KEYS:
        value = config.get(section, {}).get(key)
        if value is not None and value <= 0:
            raise ConfigError(f"config key '{section}.{key}' must be positive, got {value!r}")
    restarts = config.get("read", {}).get("max_worker_restarts")
    if restarts is not None and restarts < 0:
        raise ConfigError(f"config key 'read.max_worker_restarts' must be 0 or more, got {restarts!r}")
    content_types = config.get("read", {}).get("content_types")
    if content_types is not None and (not content_types or not all(isinstance(value, str) for value in content_types)):
        raise ConfigError(f"config key 'read.content_types' must be a non-empty list of media types like text/html, got {content_types!r}")


def check_model_files(config: dict[str, Any]) -> None:
    from pipeline.stages.classifiers import resolve_model_path

    langid = config.get("langid") or {}
    if langid.get("enabled", True) and langid.get("model"):
        require_file(Path(langid["model"]).expanduser(), "langid.model", "a fastText lid.176.bin or .ftz file, or null for the bundled one")

    classifiers = config.get("classifiers") or {}
    if classifiers.get("enabled", True):
        for index, entry in enumerate(classifiers.get("models") or []):
            key = f"classifiers.models[{index}].path"
            if not isinstance(entry, dict) or not entry.get("path"):
                raise ConfigError(f"config key '{key}' is missing; each classifier needs a path to a fastText model")
            require_file(resolve_model_path(entry["path"]), key, "a fastText model (.bin or .ftz)")

    tokenize = config.get("tokenize") or {}
    if tokenize.get("enabled", True):
        for key in TOKENIZER_FILE_KEYS:
            if tokenize.get(key):
                require_file(Path(tokenize[key]).expanduser(), f"tokenize.{key}", "the tokenizer file, or null")
        if tokenize.get("tokenizer") == "hf" and not tokenize.get("tokenizer_file"):
            raise ConfigError("config key 'tokenize.tokenizer_file' is missing; tokenizer: hf needs a tokenizer.json path")


def require_file(path: Path, key: str, expected: str) -> None:
    if not path.is_file():
        raise ConfigError(f"config key '{key}': file {path} not found; set it to {expected}")
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as error:
        raise ConfigError(f"config key '{key}': file {path} is not readable ({error.strerror}); check its permissions") from error


def check_inputs(inputs: list[str]) -> None:
    if not inputs:
        raise ConfigError("no input files given; pass WARC, WET or ARC files, folders or globs")
    for name in inputs:
        try:
            with open(name, "rb") as handle:
                handle.read(1)
        except OSError as error:
            raise ConfigError(f"input file {name} cannot be read ({error.strerror}); check the path and its permissions") from error
