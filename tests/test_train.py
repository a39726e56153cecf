import json
from pathlib import Path

import numpy as np
import pytest

from classify_cli.data.prepared import load_prepared
from classify_cli.model.bundle import load_bundle

from .conftest import write_ag_dir, write_header_csv


@pytest.fixture
def prepared(invoke, tmp_path, tiny_config):
    corpus = write_ag_dir(tmp_path / "corpus", n_train=40, n_test=10)
    result = invoke("prepare", "--from", corpus, "--out", tmp_path / "data", "--config", tiny_config)
    assert result.exit_code == 0, result.output
    return tmp_path / "data"


def test_train_writes_bundle_and_metrics(invoke, tmp_path, prepared, tiny_config):
    result = invoke("train", "--data", prepared, "--out", tmp_path / "run", "--config", tiny_config)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["epochs_run"] == 3
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    assert {"train_loss", "val_loss", "val_accuracy", "lr"} <= set(lines[0])
    assert lines[1]["lr"] < lines[0]["lr"]  # StepLR stepped once per epoch
    best = min(lines, key=lambda r: r["val_loss"])  # the best epoch is the one of lowest validation loss
    bundle = load_bundle(tmp_path / "run")
    assert bundle.meta["best"]["epoch"] == best["epoch"] == summary["best_epoch"]
    assert bundle.meta["labels"] == ["World", "Sports", "Business", "Sci/Tech"]
    # no pickle anywhere: safetensors weights plus JSON
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert [n for n in names if not n.startswith(".")] == sorted(
        ["metrics.jsonl", "model.json", bundle.meta["weights"]["file"]]
    )
    assert bundle.meta["weights"]["file"].endswith(".safetensors")
    assert "epoch" in result.stderr  # progress went to stderr, not stdout


def test_same_seed_gives_identical_metrics(invoke, tmp_path, prepared, tiny_config):
    runs = []
    for name in ("a", "b"):
        assert (
            invoke(
                "train", "--data", prepared, "--out", tmp_path / name, "--config", tiny_config, "--seed", "7"
            ).exit_code
            == 0
        )
        runs.append([json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()])
    strip = [[{k: v for k, v in r.items() if k != "seconds"} for r in run] for run in runs]
    assert strip[0] == strip[1]
    a, b = load_bundle(tmp_path / "a"), load_bundle(tmp_path / "b")
    for key in a.tensors:
        assert np.array_equal(a.tensors[key], b.tensors[key])


def test_cli_overrides_reach_the_config(invoke, tmp_path, prepared, tiny_config):
    result = invoke(
        "train",
        "--data",
        prepared,
        "--out",
        tmp_path / "run",
        "--config",
        tiny_config,
        "--epochs",
        "1",
        "--set",
        "model.weighting=mean",
        "--set",
        "train.batch_size=auto",
        "--device",
        "cpu",
    )
    assert result.exit_code == 0, result.output
    meta = load_bundle(tmp_path / "run").meta
    assert meta["train"]["epochs"] == 1 and meta["model"]["weighting"] == "mean"
    # a tiny corpus: "auto" is batch 64 at the configured lr (2.0 in tiny.toml)
    assert meta["train"]["batch_size"] == "auto"
    assert meta["train_effective"] == {"batch_size": 64, "lr": 2.0}
    assert "batch 64, lr 2" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "train.lr=0"], "train.lr must be > 0"),
        (["--set", "train.bogus=1"], "unknown key train.bogus"),
        (["--epochs", "0"], "train.epochs must be at least 1"),
    ],
)
def test_bad_settings_fail_cleanly(invoke, tmp_path, prepared, tiny_config, args, message):
    result = invoke("train", "--data", prepared, "--out", tmp_path / "run", "--config", tiny_config, *args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "run" / "model.json").exists()


def test_missing_data_dir(invoke, tmp_path, tiny_config):
    result = invoke("train", "--data", tmp_path / "nope", "--out", tmp_path / "run", "--config", tiny_config)
    assert result.exit_code == 2
    assert "classify prepare" in result.stderr


def test_bias_is_the_fixed_log_prior(invoke, tmp_path, prepared, tiny_config):
    assert invoke("train", "--data", prepared, "--out", tmp_path / "run", "--config", tiny_config).exit_code == 0
    counts = np.bincount(load_prepared(prepared, ("train",)).splits["train"].labels, minlength=4)
    expected = np.log((counts + 1) / (counts.sum() + 4))
    np.testing.assert_allclose(load_bundle(tmp_path / "run").tensors["bias"], expected, rtol=1e-6)


def test_model_file_is_plain_safetensors_of_the_scoring_tensors(trained):
    """Written without the safetensors library (no copy of the table), read back by it alike."""
    from safetensors.numpy import load

    _, _, run = trained
    bundle = load_bundle(run)
    official = load((run / bundle.meta["weights"]["file"]).read_bytes())
    assert official.keys() == bundle.tensors.keys()
    for name, array in official.items():
        np.testing.assert_array_equal(array, bundle.tensors[name])


@pytest.mark.parametrize("rows, dim", [(74_654, 64), (588_000, 32), (1_725_301, 16), (50_000_000, 16)])
def test_auto_embed_dim_keeps_the_table_near_128_mib(rows, dim):
    from classify_cli.train.loop import resolve_embed_dim

    assert resolve_embed_dim("auto", rows) == dim
    assert resolve_embed_dim(48, rows) == 48


def test_a_table_larger_than_memory_is_refused_before_allocating():
    from classify_cli.train.net import check_memory
    from classify_cli.util.errors import InputError

    check_memory(1_000_000, 64, 4, 10_000)
    with pytest.raises(InputError, match=r"need \d+\.\d GiB"):
        check_memory(10**9, 4096, 4, 0)
    with pytest.raises(InputError, match=r"x 100,000 classes need \d+\.\d GiB"):  # the classes alone
        check_memory(1_000_000, 1, 100_000, 0)


def many_labels(path: Path, labels: int, per_label: int = 3) -> Path:
    """A CSV of ``labels`` classes, ``per_label`` short documents each (words shared by all)."""
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    rows = [(f"label{c:05d}", " ".join(rng.choice(words, 8))) for c in range(labels) for _ in range(per_label)]
    return write_header_csv(path, rows)


def test_many_labels_are_refused_before_their_tables_are_made(invoke, tmp_path, monkeypatch):
    """500 labels on a machine of 4 MiB: the embedding table alone would fit (the check before
    counted only it), the rows x classes tables do not, and nothing of them is allocated."""
    import classify_cli.model.feature_sets
    import classify_cli.train.net

    corpus = many_labels(tmp_path / "many.csv", 500)
    result = invoke("prepare", "--from", corpus, "--out", tmp_path / "data")
    assert result.exit_code == 0, result.output
    monkeypatch.setattr(classify_cli.train.net, "machine_memory", lambda: 4 << 20)
    made = []
    monkeypatch.setattr(classify_cli.model.feature_sets, "class_document_frequency", lambda *a, **k: made.append(1))
    config = tmp_path / "c.toml"
    config.write_text('[model]\nembed_dim = 16\nbuckets = 2000\n[train]\nepochs = 1\ndevice = "cpu"\n')
    result = invoke("train", "--data", tmp_path / "data", "--out", tmp_path / "run", "--config", config)
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: an embedding table of ") and "x 500 classes need " in line, line
    assert not made and not (tmp_path / "run").exists()


def test_features_made_batch_by_batch_train_the_same_model(invoke, tmp_path, prepared, tiny_config, monkeypatch):
    """A train split too large to keep its features makes them batch by batch from its token
    ids, read from the prepared data's memory map; that, and letting go of their pages after
    every step, give the model features kept in memory give, and no file is left beside it."""
    import classify_cli.model.feature_sets as feature_sets
    import classify_cli.train.loop as training
    from classify_cli.data.spill import mapping_of

    assert invoke("train", "--data", prepared, "--out", tmp_path / "kept", "--config", tiny_config).exit_code == 0
    dropped, real_drop = [], training.drop_resident
    monkeypatch.setattr(feature_sets, "STORED_FEATURES", 0)
    monkeypatch.setattr(training, "RELEASE_STEPS", 1)
    monkeypatch.setattr(training, "drop_resident", lambda a: (dropped.append(a), real_drop(a)))
    assert invoke("train", "--data", prepared, "--out", tmp_path / "dropped", "--config", tiny_config).exit_code == 0
    assert dropped and all(mapping_of(a) is not None for a in dropped)
    a, b = load_bundle(tmp_path / "kept"), load_bundle(tmp_path / "dropped")
    for key in a.tensors:
        assert np.array_equal(a.tensors[key], b.tensors[key]), key
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "data", "dropped", "kept", "tiny.toml"]


@pytest.mark.parametrize("validation_docs", [300, 100])
def test_only_a_validation_split_that_can_tell_epochs_apart_stops_training_early(invoke, tmp_path, validation_docs):
    """Labels drawn at random: validation loss rises from the first epochs on. 300 validation
    documents stop the run after `patience` epochs without a lower loss; 100 cannot tell one
    epoch from the next, so every epoch runs. The best epoch is kept either way."""
    import random

    from .conftest import make_rows

    rng = random.Random(0)
    rows = [(rng.choice(["a", "b"]), text) for _, text in make_rows(250, seed=1)]  # 1,000 rows
    source = write_header_csv(tmp_path / "noise.csv", rows)
    fraction = validation_docs / 900  # of what the test split (100) leaves
    data, run = tmp_path / "data", tmp_path / "run"
    sets = ["--set", f"prepare.validation_fraction={fraction}", "--set", "prepare.test_fraction=0.1"]
    assert invoke("prepare", "--from", source, "--out", data, *sets).exit_code == 0
    assert len(load_prepared(data, ("validation",)).splits["validation"]) == validation_docs
    args = ["--set", "train.epochs=8", "--set", "train.patience=2", "--set", "train.device=cpu", "--lr", "8"]
    summary = json.loads(invoke("train", "--data", data, "--out", run, *args).stdout)
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert summary["best_epoch"] == min(history, key=lambda r: r["val_loss"])["epoch"]
    if validation_docs >= 300:
        assert summary["epochs_run"] == summary["best_epoch"] + 2 < 8
    else:
        assert summary["epochs_run"] == 8
