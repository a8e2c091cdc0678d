"""A bad config or input path fails before any work, with the key or path and the fix in the message."""

import pytest

from pipeline.config import ConfigError, load_config
from pipeline.validate import validate_run


def test_valid_defaults_pass(shared_data):
    validate_run(load_config(), [str(shared_data / "warc" / "cc-main-2020-34-sample.warc.gz")])


def test_unknown_key_named(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("read:\n  record_timeout: 5\n")
    with pytest.raises(ConfigError, match="read.record_timeout"):
        load_config(path)


def test_wrong_type_named(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("extract:\n  max_html_bytes: lots\n")
    with pytest.raises(ConfigError, match="extract.max_html_bytes"):
        load_config(path)


def test_missing_classifier_model_named(tmp_path, shared_data):
    config = load_config()
    config["classifiers"]["models"][0]["path"] = str(tmp_path / "missing.ftz")
    with pytest.raises(ConfigError, match=r"classifiers.models\[0\].path.*missing.ftz.*not found"):
        validate_run(config, [str(shared_data / "warc" / "cc-main-2020-34-sample.warc.gz")])


def test_missing_langid_model_named(tmp_path, shared_data):
    config = load_config()
    config["langid"]["model"] = str(tmp_path / "lid.176.bin")
    with pytest.raises(ConfigError, match="langid.model.*lid.176.bin"):
        validate_run(config, [str(shared_data / "warc" / "cc-main-2020-34-sample.warc.gz")])


def test_disabled_stage_model_not_checked(tmp_path, shared_data):
    config = load_config()
    config["classifiers"]["models"][0]["path"] = str(tmp_path / "missing.ftz")
    config["classifiers"]["enabled"] = False
    validate_run(config, [str(shared_data / "warc" / "cc-main-2020-34-sample.warc.gz")])


def test_non_positive_limit_named(shared_data):
    config = load_config()
    config["read"]["record_timeout_s"] = 0
    with pytest.raises(ConfigError, match="read.record_timeout_s.*positive"):
        validate_run(config, [str(shared_data / "warc" / "cc-main-2020-34-sample.warc.gz")])


def test_unreadable_input_named(tmp_path):
    folder = tmp_path / "not-a-file.warc"
    folder.mkdir()
    with pytest.raises(ConfigError, match="not-a-file.warc cannot be read"):
        validate_run(load_config(), [str(folder)])


def test_no_inputs_rejected():
    with pytest.raises(ConfigError, match="no input files"):
        validate_run(load_config(), [])
