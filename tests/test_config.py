"""Configuration loading: defaults, overrides and errors that name the key."""

import re

import pytest

from pipeline.config import ConfigError, load_config
from pipeline.engine import expand_inputs


def test_defaults_have_published_thresholds():
    config = load_config()
    assert config["gopher_quality"]["min_doc_words"] == 50
    assert config["gopher_repetition"]["dup_line_frac"] == 0.3
    assert config["langid"]["min_language_score"] == 0.65


def test_override_keeps_other_keys(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("langid:\n  languages: [de, fr]\n")
    config = load_config(path)
    assert config["langid"]["languages"] == ["de", "fr"]
    assert config["langid"]["min_language_score"] == 0.65


def test_unknown_key_named(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("langid:\n  min_languge_score: 0.5\n")
    with pytest.raises(ConfigError, match="langid.min_languge_score"):
        load_config(path)


def test_wrong_type_named(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("gopher_quality:\n  min_doc_words: many\n")
    with pytest.raises(ConfigError, match="gopher_quality.min_doc_words"):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.yaml")


def test_missing_input_path(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        expand_inputs([str(tmp_path / "nothing.warc.gz")])


def test_folder_and_glob_inputs(shared_data):
    files = expand_inputs([str(shared_data / "warc"), str(shared_data / "warc" / "*.warc.gz")])
    assert len(files) == 10
    assert files == sorted(files)


@pytest.mark.parametrize("overrides,key", [
    ({"tokenize": {"shard_tokens": -5}}, "tokenize.shard_tokens"),
    ({"tokenize": {"val_fraction": 1.5}}, "tokenize.val_fraction"),
    ({"dedup": {"minhash": {"bands": 32}}}, "bands * rows"),
    ({"classifiers": {"models": [{"path": "pipeline/models/quality-en.ftz", "lable": "__label__hq",
                                  "column": "q", "min_score": 0.1}]}}, "lable"),
])
def test_run_wide_settings_checked_before_work(shared_data, overrides, key):
    from pipeline.validate import validate_run

    config = load_config(overrides=overrides)
    with pytest.raises(ConfigError, match=re.escape(key)):
        validate_run(config, expand_inputs([str(shared_data / "warc" / "wget-crawl-en-0001.warc.gz")]))


def test_output_path_that_is_a_file(tmp_path, shared_data):
    import subprocess
    import sys

    target = tmp_path / "afile"
    target.write_text("")
    result = subprocess.run([sys.executable, "-m", "pipeline", "run", str(shared_data / "warc" / "wget-crawl-en-0001.warc.gz"),
                             "-o", str(target)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "is a file" in result.stderr
