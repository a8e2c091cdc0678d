"""Tests of the run configuration: presets, YAML overrides and validation errors that name the key."""

from __future__ import annotations

import pytest
import torch

from model.config import PRESETS, ConfigError, load_config
from model.transformer import Transformer
from test_model_data import single_thread  # noqa: F401 (autouse fixture)


def write_yaml(tmp_path, text: str):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_gpt2_small_preset_shape():
    config = load_config(preset="gpt2-small")
    assert (config.model.n_layer, config.model.n_embd, config.model.n_head, config.model.context_length) == (12, 768, 12, 1024)


def test_gpt2_small_is_124m_class():
    config = load_config(preset="gpt2-small")
    config.model.vocab_size = 50257
    with torch.device("meta"):
        model = Transformer(config.model)
    assert 120e6 < model.num_parameters() < 130e6


def test_gpt2_medium_preset_shape():
    config = load_config(preset="gpt2-medium")
    assert (config.model.n_layer, config.model.n_embd, config.model.n_head) == (24, 1024, 16)


def test_every_preset_validates():
    for name in PRESETS:
        assert load_config(preset=name).model.n_embd > 0


def test_yaml_overrides_preset(tmp_path):
    path = write_yaml(tmp_path, "preset: tiny\nmodel:\n  n_layer: 3\ntrain:\n  lr: 0.01\n  compile: false\n")
    config = load_config(path)
    assert config.model.n_layer == 3
    assert config.model.n_embd == PRESETS["tiny"]["model"]["n_embd"]
    assert config.train.lr == 0.01
    assert config.train.compile == "false"


def test_cli_preset_replaces_file_preset(tmp_path):
    path = write_yaml(tmp_path, "preset: tiny\nmodel:\n  n_layer: 3\n")
    config = load_config(path, preset="gpt2-small")
    assert config.model.n_embd == 768
    assert config.model.n_layer == 3


def test_unknown_key_named(tmp_path):
    path = write_yaml(tmp_path, "model:\n  n_heads: 4\n")
    with pytest.raises(ConfigError, match=r"model\.n_heads"):
        load_config(path)


def test_wrong_type_named(tmp_path):
    path = write_yaml(tmp_path, "train:\n  batch_size: eight\n")
    with pytest.raises(ConfigError, match=r"train\.batch_size must be an integer"):
        load_config(path)


def test_boolean_is_not_an_integer(tmp_path):
    path = write_yaml(tmp_path, "model:\n  n_layer: true\n")
    with pytest.raises(ConfigError, match=r"model\.n_layer"):
        load_config(path)


def test_indivisible_width_named(tmp_path):
    path = write_yaml(tmp_path, "preset: tiny\nmodel:\n  n_embd: 30\n  n_head: 4\n")
    with pytest.raises(ConfigError, match=r"model\.n_embd must be divisible"):
        load_config(path)


def test_min_lr_above_lr_named(tmp_path):
    path = write_yaml(tmp_path, "train:\n  lr: 0.001\n  min_lr: 0.01\n")
    with pytest.raises(ConfigError, match=r"train\.min_lr"):
        load_config(path)


def test_invalid_choice_named(tmp_path):
    path = write_yaml(tmp_path, "train:\n  dtype: float16\n")
    with pytest.raises(ConfigError, match=r"train\.dtype must be one of"):
        load_config(path)


def test_unknown_preset_rejected():
    with pytest.raises(ConfigError, match="unknown preset 'gpt5'"):
        load_config(preset="gpt5")


def test_missing_file_rejected(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")


def test_demo_config_loads():
    config = load_config("configs/model-demo.yaml")
    assert config.train.max_steps == 300
