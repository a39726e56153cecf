"""The real benchmark split, end to end with the default config (skipped without ../shared)."""

import json
import random
from pathlib import Path

import pytest

from .conftest import SHARED_DATA
from .corpora import long_documents, read_agnews, write_agnews

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
    # 0.874 on this machine, as TF-IDF + LinearSVC (0.865 before supervised term weighting)
    assert report["accuracy"] >= 0.87, report["accuracy"]


@pytest.mark.parametrize(
    "corpus, minimum",
    [
        # 1,000 short articles: the old defaults (a trained bias, the IDF mean) stayed near chance
        # (0.52); now 0.838 (TF-IDF + LinearSVC: 0.833; 0.811 before n-grams weighed half and
        # the best epoch was chosen by validation loss)
        ("subsample-1k", 0.81),
        # 760 documents of 8 articles each: the old defaults stayed at chance (0.50); now 0.995,
        # as TF-IDF + LinearSVC
        ("long-8", 0.95),
    ],
)
def test_defaults_hold_on_small_and_long_corpora(invoke, tmp_path, corpus, minimum):
    rng = random.Random(0)
    train, test = read_agnews(AGNEWS7K / "train.csv"), read_agnews(AGNEWS7K / "test.csv")
    if corpus == "subsample-1k":
        train = rng.sample(train, 1000)
    else:
        train, test = long_documents(train, 8, rng), long_documents(test, 8, rng)
    source = tmp_path / corpus
    write_agnews(source / "train.csv", train)
    write_agnews(source / "test.csv", test)
    (source / "classes.txt").write_text((AGNEWS7K / "classes.txt").read_text())
    assert invoke("prepare", "--from", source, "--out", tmp_path / "data").exit_code == 0
    assert invoke("train", "--data", tmp_path / "data", "--out", tmp_path / "run", "--device", "cpu").exit_code == 0
    report = json.loads(invoke("evaluate", "--model", tmp_path / "run", "--format", "json").stdout)
    assert report["accuracy"] >= minimum, report["accuracy"]
