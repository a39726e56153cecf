"""The real benchmark split, end to end with the default config (skipped without ../shared)."""

import json
from pathlib import Path

import pytest

from .conftest import SHARED_DATA

AGNEWS7K = SHARED_DATA / "agnews7k"
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "agnews.toml"

pytestmark = pytest.mark.skipif(not (AGNEWS7K / "train.csv").is_file(), reason="../shared/data/agnews7k not present")


def test_default_config_reaches_target_accuracy(invoke, tmp_path):
    data, run = tmp_path / "data", tmp_path / "run"
    assert invoke("prepare", "--from", AGNEWS7K, "--out", data, "--config", DEFAULT_CONFIG).exit_code == 0
    result = invoke("train", "--data", data, "--out", run, "--config", DEFAULT_CONFIG, "--device", "cpu")
    assert result.exit_code == 0, result.output
    report = json.loads(invoke("evaluate", "--model", run, "--data", data, "--format", "json").stdout)
    assert report["n"] == 1520
    assert report["accuracy"] >= 0.85, report["accuracy"]
