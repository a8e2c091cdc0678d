"""Run configuration: `configs/default.yaml` overlaid with a user's file, then validated.

Every key a user sets must exist in the defaults and have a compatible type, so a typo
fails before any work starts, with the key's dotted path in the message.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"

# Sections whose keys are free-form (maps keyed by n-gram size, lists of model entries).
FREE_FORM_KEYS = {"gopher_repetition.top_n_grams", "gopher_repetition.dup_n_grams", "classifiers.models"}


class ConfigError(ValueError):
    """An invalid configuration value; the message names the key and the fix."""


def load_yaml(path: Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}; check the -c path") from error
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections, got {type(data).__name__}")
    return data


def load_config(path: Path | str | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the defaults overlaid with the file at `path` and then with `overrides`."""
    config = load_yaml(DEFAULT_CONFIG)
    if path is not None:
        merge(config, load_yaml(Path(path)), origin=str(path))
    if overrides:
        merge(config, overrides, origin="overrides")
    return config


def merge(base: dict[str, Any], update: dict[str, Any], origin: str, prefix: str = "") -> None:
    """Overlay `update` on `base` in place, rejecting unknown keys and mismatched types."""
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if key not in base:
            known = ", ".join(sorted(str(k) for k in base))
            raise ConfigError(f"{origin}: unknown config key '{dotted}'; known keys here: {known}")
        default = base[key]
        if dotted in FREE_FORM_KEYS:
            base[key] = copy.deepcopy(value)
        elif isinstance(default, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{origin}: config key '{dotted}' must be a mapping, got {value!r}")
            merge(default, value, origin, prefix=f"{dotted}.")
        else:
            check_type(dotted, default, value, origin)
            base[key] = copy.deepcopy(value)


def check_type(dotted: str, default: Any, value: Any, origin: str) -> None:
    if default is None or value is None:
        return
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ConfigError(
            f"{origin}: config key '{dotted}' must be of type {type(default).__name__} "
            f"like its default {default!r}, got {value!r}"
        )


def dump_config(config: dict[str, Any], path: Path) -> None:
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
