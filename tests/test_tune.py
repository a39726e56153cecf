"""classify tune on tiny prepared data: real trials, judged on the validation split only."""

from __future__ import annotations

import dataclasses
import json
import tomllib

import pytest

from classify_cli.model.bundle import load_bundle

from .conftest import write_ag_dir

optuna = pytest.importorskip("optuna")

CONFIG = '[prepare]\nvalidation_fraction = 0.2\n[model]\nbuckets = 5000\n[train]\nepochs = 3\ndevice = "cpu"\n'


@pytest.fixture
def prepared(invoke, tmp_path):
    (tmp_path / "c.toml").write_text(CONFIG)
    corpus = write_ag_dir(tmp_path / "corpus", n_train=40, n_test=10)
    assert (
        invoke("prepare", "--from", corpus, "--out", tmp_path / "data", "--config", tmp_path / "c.toml").exit_code == 0
    )
    return tmp_path / "data", tmp_path / "c.toml"


def _trials(run) -> list[dict]:
    return [json.loads(line) for line in (run / "trials.jsonl").read_text().splitlines()]


@pytest.fixture
def reads(monkeypatch) -> list[tuple]:
    """Every (path, split, ...) that prepared data is loaded with, from now on."""
    import classify_cli.data.prepared as prepared_module

    read = []
    real = prepared_module.load_prepared
    monkeypatch.setattr(
        prepared_module,
        "load_prepared",
        lambda path, splits=("train", "validation", "test"): (read.append((path, *splits)), real(path, splits))[1],
    )
    return read


def test_tune_keeps_the_best_trial_as_a_run(invoke, tmp_path, prepared, reads):
    data, config = prepared
    run = tmp_path / "run"
    args = ["--config", config, "--trials", "4", "--budget", "120", "--folds", "1"]
    result = invoke("tune", "--data", data, "--out", run, *args)
    assert result.exit_code == 0, result.output
    assert not any("test" in r for r in reads)  # the test split is never read
    summary = json.loads(result.stdout)
    trials = _trials(run)
    assert [t["trial"] for t in trials] == [0, 1, 2, 3] == [t["trial"] for t in summary["trials"]]
    assert trials[0]["model.weighting"] == "tfidf-l2" and trials[0]["train.lr"] == 2.0  # trial 0: the config given
    done = {t["trial"]: t for t in trials if t["state"] == "complete"}
    chosen = summary["best"]
    assert chosen["accuracy"] == done[chosen["trial"]]["accuracy"]
    assert chosen["trial"] == 0 or chosen["accuracy"] > done[0]["accuracy"]  # never below the config given
    meta = load_bundle(run).meta
    assert (
        meta["tuned"]["metric"] == "accuracy" and meta["tuned"]["trials"] == 4 and meta["tuned"]["on"] == "validation"
    )
    assert meta["best"]["val_accuracy"] == pytest.approx(summary["best"]["accuracy"])
    tuned = tomllib.loads((run / "tuned.toml").read_text())
    best = next(t for t in trials if t["trial"] == summary["best"]["trial"])
    assert tuned["train"]["lr"] == best["train.lr"] and tuned["model"]["ngrams"] == best["model.ngrams"]
    assert invoke("evaluate", "--model", run, "--format", "json").exit_code == 0
    assert invoke("train", "--data", data, "--out", tmp_path / "again", "--config", run / "tuned.toml").exit_code == 0
    assert "tuned" in json.loads(invoke("info", run, "--format", "json").stdout)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again", "c.toml", "corpus", "data", "run"]  # no work files


def test_the_same_seed_gives_the_same_search(invoke, tmp_path, prepared):
    data, config = prepared
    for name in ("a", "b"):
        args = ["tune", "--data", data, "--out", tmp_path / name, "--config", config, "--trials", "3", "--seed", "3"]
        assert invoke(*args).exit_code == 0
    strip = [[{k: v for k, v in t.items() if k != "seconds"} for t in _trials(tmp_path / n)] for n in ("a", "b")]
    assert strip[0] == strip[1]


def test_a_diverging_trial_is_recorded_and_the_search_goes_on(invoke, tmp_path, prepared):
    data, config = prepared
    run = tmp_path / "run"
    result = invoke("tune", "--data", data, "--out", run, "--config", config, "--set", "train.lr=1e9", "--trials", "4")
    assert result.exit_code == 0, result.output
    states = [t["state"] for t in _trials(run)]
    assert states[0] == "diverged" and "complete" in states


def test_stopping_keeps_the_best_so_far(tmp_path, prepared):
    from classify_cli.train.tune import tune
    from classify_cli.util.config import load_config

    data, config = prepared
    calls = iter(range(10**6))
    summary = tune(
        data,
        tmp_path / "run",
        load_config(config),
        budget=120,
        trials=None,
        metric="loss",
        seed=0,
        should_stop=lambda: next(calls) > 60,  # during the second trial or so
    )
    assert summary["trials"][-1]["state"] == "stopped"
    assert (tmp_path / "run" / "model.json").is_file() and summary["best"]["loss"] > 0


@pytest.mark.parametrize("folds", [["--folds", "1"], []], ids=["validation", "folds"])
def test_a_budget_trial_0_outlasts_still_gives_the_model_of_the_config_given(invoke, tmp_path, prepared, folds):
    data, config = prepared
    run = tmp_path / "run"
    result = invoke("tune", "--data", data, "--out", run, "--config", config, "--budget", "0.01", *folds)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [(t["trial"], t["state"]) for t in summary["trials"]] == [(0, "complete")]
    assert summary["seconds"] > 0.01  # the budget ran out by the end of trial 0, which finished all the same
    assert "the budget allowed only the config given (trial 0 took" in summary["chosen_because"]
    assert load_bundle(run).meta["tuned"]["trial"] == 0 and (run / "tuned.toml").is_file()
    assert invoke("train", "--data", data, "--out", tmp_path / "given", "--config", config).exit_code == 0
    tuned, given = load_bundle(run).tensors, load_bundle(tmp_path / "given").tensors
    assert tuned.keys() == given.keys() and all((tuned[k] == given[k]).all() for k in given)
    assert invoke("evaluate", "--model", run, "--data", data, "--format", "json").exit_code == 0


@pytest.mark.parametrize("existing", [False, True], ids=["absent", "a run"])
def test_ctrl_c_during_trial_0_exits_130_and_writes_nothing(invoke, tmp_path, existing):
    import os
    import signal
    import subprocess
    import sys
    import time

    corpus = write_ag_dir(tmp_path / "corpus", n_train=400, n_test=10)
    assert invoke("prepare", "--from", corpus, "--out", tmp_path / "data").exit_code == 0
    run = tmp_path / "run"
    if existing:
        assert invoke("train", "--data", tmp_path / "data", "--out", run, "--set", "train.epochs=1").exit_code == 0

    def files():
        return {p.name: p.read_bytes() for p in run.iterdir()} if run.exists() else None

    before = files()
    # trial 0 long enough to be interrupted: many epochs, no early stop
    args = ["--set", "train.epochs=500", "--set", "train.patience=500", "--folds", "1", "--budget", "0.01"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "classify_cli", "tune", "--data", tmp_path / "data", "--out", run, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 120
    # the lock of trial 0, in tune's hidden work directory beside --out: training is under way
    while not list(tmp_path.glob(".tmp-work-*/.trial-0.lock")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert out == "" and err.count("\n") == 1 and "interrupted" in err and "Traceback" not in err
    assert files() == before  # absent, or the run as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "data", *(["run"] if existing else [])]


def test_a_small_validation_split_hands_judging_to_folds_of_train(invoke, tmp_path, prepared, reads):
    data, config = prepared
    run = tmp_path / "run"
    result = invoke("tune", "--data", data, "--out", run, "--config", config, "--trials", "3", "--seed", "1")
    assert result.exit_code == 0, result.output
    assert "5-fold cross-validation of the 128 train documents" in result.stderr  # 32 validation documents: auto
    summary = json.loads(result.stdout)
    assert summary["judged_by"] == "5-fold cross-validation of train"
    assert f"{summary['best']['accuracy']:.4f} in 5-fold cross-validation" in summary["chosen_because"]
    # each fold trains on four fifths of train and is judged on the rest; the data's own
    # validation split judges nothing but the final model's epochs; its test split is never read
    fold_reads = [r for r in reads if r[0] != data]
    assert {r[0].name for r in fold_reads} == {f"fold-{f}" for f in range(5)}
    assert not any("test" in r for r in reads)
    meta = load_bundle(run).meta
    assert meta["tuned"]["on"] == "train folds" and meta["tuned"]["folds"] == 5
    assert meta["tuned"]["value"] == pytest.approx(summary["best"]["accuracy"])
    assert meta["data"]["path"] == str(data) and meta["data"]["rows"]["train"] == 128  # the final model: all of train
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml", "corpus", "data", "run"]  # no work files


def test_folds_partition_train_and_build_their_own_vocabulary(tmp_path, prepared):
    import numpy as np

    from classify_cli.data.folds import stratified_folds, write_folds
    from classify_cli.data.prepared import load_prepared

    labels = np.array([0] * 7 + [1] * 3)
    fold = stratified_folds(labels, 3, seed=0)
    assert sorted(np.bincount(fold).tolist()) == [3, 3, 4] and len(set(fold[labels == 1].tolist())) == 3
    data, _ = prepared
    whole = load_prepared(data, ("train",))
    train = whole.splits["train"]
    held_all = []
    for path, held in write_folds(data, 4, seed=0, work=tmp_path / "folds"):
        fold_data = load_prepared(path)
        assert len(fold_data.splits["test"]) == 0
        assert fold_data.splits["validation"].labels.tolist() == train.labels[held].tolist()
        kept = np.setdiff1d(np.arange(len(train)), held)
        kept_words = {whole.vocab.itos[i] for d in kept for i in train.ids[train.offsets[d] : train.offsets[d + 1]]}
        assert set(fold_data.vocab.itos) == kept_words | {"<unk>"}  # a held-out document's own words are unknown
        held_all += held.tolist()
    assert sorted(held_all) == list(range(len(train)))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--budget", "0"], "--budget 0: give a positive number of seconds"),
        (["--budget", "-5"], "--budget -5"),
        (["--budget", "inf"], "--budget inf"),
        (["--folds", "200"], "--folds 200"),
        (["--metric", "f2"], "f2"),
        (["--trials", "0"], "--trials"),
    ],
)
def test_bad_input_is_refused_before_any_work(invoke, tmp_path, prepared, args, message):
    data, _ = prepared
    result = invoke("tune", "--data", data, "--out", tmp_path / "run", *args)
    assert result.exit_code == 2 and message in result.stderr
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_a_corpus_given_as_data_is_refused(invoke, tmp_path, prepared):
    result = invoke("tune", "--data", tmp_path / "corpus" / "train.csv", "--out", tmp_path / "run")
    assert result.exit_code == 2 and "prepare" in result.stderr and not (tmp_path / "run").exists()


def test_the_best_trial_must_beat_the_config_given_by_more_than_luck():
    import numpy as np

    from classify_cli.train.tune import _choose

    rng = np.random.default_rng(0)
    base = (rng.random(500) < 0.80).astype(float)  # trial 0: right on 80% of 500 documents
    lucky = base.copy()  # another config, as good: 20 documents won, 10 lost (+0.02, as luck gives)
    lucky[rng.choice(np.flatnonzero(base == 0), 20, replace=False)] = 1
    lucky[rng.choice(np.flatnonzero(base == 1), 10, replace=False)] = 0
    clear = base.copy()
    clear[np.flatnonzero(base == 0)[:60]] = 1  # +0.12
    given = {"trial": 0, "accuracy": base.mean(), "config": {}}
    per_doc = {0: base, 7: lucky, 9: clear}
    chosen, why = _choose(
        {"trial": 7, "accuracy": lucky.mean(), "config": {}}, given, "accuracy", "maximize", per_doc, 100
    )
    assert chosen is given and "luck among 100 trials" in why
    best = {"trial": 9, "accuracy": clear.mean(), "config": {}}
    assert _choose(best, given, "accuracy", "maximize", per_doc, 100)[0] is best
    assert _choose(given, given, "accuracy", "maximize", per_doc, 100)[0] is given


def test_max_size_tunes_for_a_model_that_fits(invoke, tmp_path, prepared):
    from classify_cli.cli.tune import describe_trials
    from classify_cli.train.compress import model_bytes

    data, config = prepared
    full = tmp_path / "full"
    assert invoke("train", "--data", data, "--out", full, "--config", config).exit_code == 0
    limit = model_bytes(full) - 3000  # the config given (trial 0, the only one) gives a model too large
    run = tmp_path / "run"
    args = ["--config", config, "--trials", "1", "--folds", "1", "--max-size", str(limit)]
    result = invoke("tune", "--data", data, "--out", run, *args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert model_bytes(run) <= limit and all(t["bytes"] <= limit for t in _trials(run) if t["state"] == "complete")
    meta = load_bundle(run).meta
    assert meta["tuned"]["max_bytes"] == limit and "compressed" in meta["head"]
    assert summary["best"]["bytes"] < model_bytes(run)  # as judged: before model.json said it was tuned
    assert "   bytes" in describe_trials(summary).splitlines()[0]
    assert summary["model"] == {"bytes": model_bytes(run), "compressed": True}
    assert invoke("evaluate", "--model", run, "--data", data, "--format", "json").exit_code == 0
    assert invoke("report", run, "--data", data, "--out", tmp_path / "pngs").exit_code == 0  # its curves kept
    again = invoke("tune", "--data", data, "--out", run, *args[:-1], "2M")  # room for the full model: no compressing
    assert again.exit_code == 0 and "compressed" not in load_bundle(run).meta["head"]


def test_max_size_below_any_model_is_refused(invoke, tmp_path, prepared):
    data, _ = prepared
    result = invoke("tune", "--data", data, "--out", tmp_path / "run", "--max-size", "10K")
    assert result.exit_code == 2 and "--max-size 10,000 bytes: no model of 4 classes" in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "run").exists()
    result = invoke("tune", "--data", data, "--out", tmp_path / "run", "--max-size", "2X")
    assert result.exit_code == 2 and "--max-size '2X'" in result.stderr


@pytest.mark.parametrize(
    "text, size", [("2000", 2000), ("500K", 500_000), ("2M", 2_000_000), ("1.5MB", 1_500_000), ("1KiB", 1024)]
)
def test_sizes_read_as_fasttext_reads_them(text, size):
    from classify_cli.util.display import parse_size

    assert parse_size(text) == size


def test_compressed_to_fit_keeps_the_most_features_that_fit(tmp_path, prepared, invoke):
    from classify_cli.data.prepared import load_prepared
    from classify_cli.model.bundle import bundle_bytes, save_bundle
    from classify_cli.train.compress import compressed, compressed_to_fit, feature_order, features_of, model_bytes

    data, config = prepared
    assert invoke("train", "--data", data, "--out", tmp_path / "full", "--config", config).exit_code == 0
    bundle = load_bundle(tmp_path / "full")
    validation = load_prepared(data, ("validation",)).splits["validation"]
    every = feature_order(bundle)
    limit = bundle_bytes(*compressed(bundle, every, "int8", validation, "test")) - 3000  # binds: not all fit
    tensors, meta = compressed_to_fit(bundle, limit, validation, "test")
    save_bundle(tmp_path / "small", tensors, meta)
    assert model_bytes(tmp_path / "small") == bundle_bytes(tensors, meta) <= limit  # sized exactly, unwritten
    more = every[: features_of(meta) + 1]
    assert (
        features_of(meta) < len(every) and bundle_bytes(*compressed(bundle, more, "int8", validation, "test")) > limit
    )  # one more does not fit
    assert compressed_to_fit(bundle, 1000, validation, "test") is None


def test_a_size_only_a_trial_shows_too_small_stops_at_the_first(invoke, tmp_path, prepared):
    from classify_cli.train.compress import smallest_bytes
    from classify_cli.train.trials import TUNED_ROOM

    data, config = prepared
    floor = smallest_bytes(["class1", "class2", "class3", "class4"]) + TUNED_ROOM
    args = ["--config", config, "--folds", "1", "--max-size", str(floor + 50)]  # past the check, not the model
    result = invoke("tune", "--data", data, "--out", tmp_path / "run", *args)
    assert result.exit_code == 2 and "a model of one feature takes" in result.stderr
    assert result.stderr.count("error:") == 1 and not (tmp_path / "run").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml", "corpus", "data"]


def test_a_chosen_config_that_diverges_on_all_of_train_gives_way_to_the_config_given(tmp_path, prepared):
    from classify_cli.train.tune import _train_chosen
    from classify_cli.util.config import load_config

    data, config = prepared
    cfg = load_config(config)
    wild = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, lr=1e9))
    chosen = {"trial": 7, "accuracy": 0.9, "config": wild.to_dict()}
    given = {"trial": 0, "accuracy": 0.8, "config": cfg.to_dict()}
    kept, why = _train_chosen(chosen, given, "chose trial 7", data, tmp_path, log=lambda m: None)
    assert kept is given and "trial 7 diverged" in why
    assert (tmp_path / "trial-0" / "model.json").is_file() and not (tmp_path / "trial-7").exists()


def test_training_over_a_tuned_run_leaves_no_tuning_record_of_the_old_model(invoke, tmp_path, prepared):
    data, config = prepared
    run = tmp_path / "run"
    assert invoke("tune", "--data", data, "--out", run, "--config", config, "--trials", "1").exit_code == 0
    assert (run / "tuned.toml").is_file() and (run / "trials.jsonl").is_file()
    assert invoke("train", "--data", data, "--out", run, "--config", config).exit_code == 0
    assert not (run / "tuned.toml").exists() and not (run / "trials.jsonl").exists()
    assert "tuned" not in load_bundle(run).meta


def test_tune_searches_with_and_without_the_vectors_given(invoke, tmp_path, prepared):
    from .test_vectors import topic_vectors, write_glove

    data, config = prepared
    vectors = write_glove(tmp_path / "topics.txt", topic_vectors())
    run = tmp_path / "run"
    args = ["--config", config, "--trials", "6", "--budget", "120", "--folds", "1", "--seed", "1"]
    result = invoke("tune", "--data", data, "--out", run, *args, "--set", f"model.vectors={vectors}")
    assert result.exit_code == 0, result.output
    trials = _trials(run)
    assert trials[0]["model.vectors"] == str(vectors)  # the config given
    assert {t["model.vectors"] for t in trials} == {str(vectors), "none"}
    # every trial draws the learned columns' number; with vectors they come after the vectors'
    assert all("model.embed_dim" in t for t in trials)
    chosen = json.loads((run / "model.json").read_text())
    assert ("vectors" in chosen) == (chosen["model"]["vectors"] is not None)
