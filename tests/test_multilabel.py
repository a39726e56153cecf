"""Several labels per text: list labels in every input format, the task recorded in prepared
data and model.json, training on a sigmoid per label, the threshold chosen on validation and
overridden by predict, evaluate's set metrics, resume and torchrun, and every bad input."""

from __future__ import annotations

import csv
import dataclasses
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from classify_cli.data.labels import strata
from classify_cli.data.prepare import stratified_split
from classify_cli.data.prepared import load_prepared
from classify_cli.model.metrics import best_threshold
from classify_cli.model.task import TASKS

from .conftest import FILLER, TOPICS, assert_same_model

MULTI = TASKS["multi_label"]
CONFIG = (
    "[prepare]\nvalidation_fraction = 0.2\n\n[model]\nembed_dim = 16\nbuckets = 5000\n\n"
    '[train]\nepochs = {epochs}\nlr = 2.0\nbatch_size = 16\ndevice = "cpu"\n'
)


def multi_rows(n: int, seed: int = 0) -> list[tuple[str, list[str]]]:
    """(text, labels) rows: each text mixes the topic words of 0 to 3 labels."""
    rng = random.Random(seed)
    names = list(TOPICS)
    rows = []
    for _ in range(n):
        labels = rng.sample(names, rng.choice([0, 1, 1, 1, 2, 2, 3]))
        words = [rng.choice(TOPICS[label].split()) for label in labels for _ in range(4)]
        words += [rng.choice(FILLER) for _ in range(5)]
        rng.shuffle(words)
        rows.append((" ".join(words), labels))
    return rows


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps({"text": t, "labels": labels}) + "\n" for t, labels in rows))
    return path


def write_csv(path: Path, rows, sep: str = "|") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "tags"])
        writer.writerows((t, sep.join(labels)) for t, labels in rows)
    return path


def predicted(invoke, run: Path, file: Path) -> list[dict]:
    """``predict --format jsonl``'s records of ``file``."""
    return [
        json.loads(x)
        for x in invoke("predict", "--model", run, "--file", file, "--format", "jsonl").stdout.splitlines()
    ]


def counts(rows) -> dict[str, int]:
    return {name: sum(name in labels for _, labels in rows) for name in sorted(TOPICS)}


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    """A multi-label corpus (train and test JSONL), prepared and trained once: (corpus, data, run)."""
    from typer.testing import CliRunner

    from classify_cli.cli import app

    base = tmp_path_factory.mktemp("multi")
    corpus = base / "corpus"
    corpus.mkdir()
    write_jsonl(corpus / "train.jsonl", multi_rows(400, seed=1))
    write_jsonl(corpus / "test.jsonl", multi_rows(80, seed=2))
    config = base / "c.toml"
    config.write_text(CONFIG.format(epochs=4))
    runner = CliRunner()
    data, run = base / "data", base / "run"
    args = ["prepare", "--from", str(corpus), "--out", str(data), "--config", str(config), "--label-field", "labels"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["train", "--data", str(data), "--out", str(run), "--config", str(config)])
    assert result.exit_code == 0, result.output
    return corpus, data, run


# --- data: each format's list labels -----------------------------------------------------------


def test_jsonl_lists_make_multi_label_data_with_every_label_counted(multi):
    corpus, data, _ = multi
    prepared = load_prepared(data)
    assert prepared.manifest["task"] == "multi_label"
    assert prepared.labels == sorted(TOPICS)
    test = prepared.splits["test"]
    assert test.labels.dtype == np.uint8 and test.labels.shape == (80, 4)
    rows = multi_rows(80, seed=2)
    assert prepared.manifest["splits"]["test"]["per_class"] == counts(rows)
    assert test.labels.sum() == sum(len(labels) for _, labels in rows)
    assert (test.labels.sum(axis=1) == 0).any()  # an empty list is a valid record: none applies


def test_csv_with_label_sep_reads_the_same_data_as_jsonl_lists(invoke, tmp_path):
    rows = multi_rows(120, seed=3)
    write_jsonl(tmp_path / "t.jsonl", rows)
    write_csv(tmp_path / "t.csv", rows, sep=";")
    jsonl = invoke("prepare", "--from", tmp_path / "t.jsonl", "--out", tmp_path / "a", "--label-field", "labels")
    sep = invoke(
        "prepare", "--from", tmp_path / "t.csv", "--out", tmp_path / "b", "--label-field", "tags", "--label-sep", ";"
    )
    assert jsonl.exit_code == 0 and sep.exit_code == 0, jsonl.output + sep.output
    assert "labels (several per text)" in sep.stdout
    a, b = load_prepared(tmp_path / "a"), load_prepared(tmp_path / "b")
    for split in ("train", "validation", "test"):
        assert np.array_equal(a.splits[split].labels, b.splits[split].labels)
        assert np.array_equal(a.splits[split].ids, b.splits[split].ids)


def test_parquet_list_column(invoke, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = multi_rows(100, seed=4)
    table = pa.table(
        {"text": [t for t, _ in rows], "labels": pa.array([labels for _, labels in rows], pa.list_(pa.string()))}
    )
    pq.write_table(table, tmp_path / "t.parquet")
    assert (
        invoke(
            "prepare", "--from", tmp_path / "t.parquet", "--out", tmp_path / "d", "--label-field", "labels"
        ).exit_code
        == 0
    )
    prepared = load_prepared(tmp_path / "d")
    assert prepared.manifest["task"] == "multi_label"
    total = {s: prepared.manifest["splits"][s]["per_class"] for s in ("train", "validation", "test")}
    assert {n: sum(t[n] for t in total.values()) for n in sorted(TOPICS)} == counts(rows)


def test_hub_sequence_of_class_labels(invoke, monkeypatch, tmp_path):
    datasets = pytest.importorskip("datasets")
    from classify_cli.inputs import sources

    names = list(TOPICS)  # declared order, not alphabetical
    features = datasets.Features(
        {"text": datasets.Value("string"), "topics": datasets.Sequence(datasets.ClassLabel(names=names))}
    )
    rows = multi_rows(120, seed=5)

    def split(part):
        return datasets.Dataset.from_dict(
            {"text": [t for t, _ in part], "topics": [[names.index(x) for x in labels] for _, labels in part]},
            features=features,
        )

    monkeypatch.setattr(sources, "_hub_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr(
        datasets,
        "load_dataset",
        lambda name: datasets.DatasetDict({"train": split(rows[:100]), "test": split(rows[100:])}),
    )
    result = invoke("prepare", "--from", "someone/tagged", "--out", tmp_path / "d", "--label-field", "topics")
    assert result.exit_code == 0, result.output
    prepared = load_prepared(tmp_path / "d")
    assert prepared.labels == names and prepared.manifest["task"] == "multi_label"
    assert prepared.manifest["splits"]["test"]["per_class"] == {
        n: sum(n in labels for _, labels in rows[100:]) for n in names
    }


def test_task_auto_is_single_for_plain_labels_and_task_multi_reads_them_as_sets_of_one(invoke, tmp_path):
    rows = [(t, labels[:1] or ["World"]) for t, labels in multi_rows(80, seed=6)]
    write_csv(tmp_path / "t.csv", rows)
    assert (
        invoke("prepare", "--from", tmp_path / "t.csv", "--out", tmp_path / "a", "--label-field", "tags").exit_code == 0
    )
    assert load_prepared(tmp_path / "a").manifest["task"] == "single_label"
    args = ("--from", tmp_path / "t.csv", "--out", tmp_path / "b", "--label-field", "tags", "--task", "multi")
    assert invoke("prepare", *args).exit_code == 0
    b = load_prepared(tmp_path / "b")
    assert b.manifest["task"] == "multi_label" and (b.splits["train"].labels.sum(axis=1) == 1).all()


def test_carved_splits_keep_each_labels_share():
    rng = np.random.default_rng(0)
    labels = (rng.random((5000, 6)) < np.array([0.5, 0.3, 0.1, 0.05, 0.02, 0.01])).astype(np.uint8)
    kept, carved = stratified_split(strata(labels), 0.2, seed=0)
    assert len(np.intersect1d(kept, carved)) == 0 and len(kept) + len(carved) == 5000
    share = labels[carved].sum(axis=0) / labels.sum(axis=0)
    assert np.all(np.abs(share - 0.2) < 0.03), share  # the rarest labels (50-100 texts) too


# --- training and the decision rule ------------------------------------------------------------


def test_bce_loss_sums_over_labels_and_a_guess_costs_c_ln_2():
    import torch

    logits = torch.tensor([[2.0, -1.0, 0.0], [0.5, 0.5, -3.0]])
    targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    p = torch.sigmoid(logits)
    plain = dataclasses.replace(MULTI, pos_weight=1.0)
    by_hand = -(targets * p.log() + (1 - targets) * (1 - p).log()).sum(1).mean()
    assert torch.allclose(plain.loss(logits, targets), by_hand)
    assert torch.allclose(plain.loss(logits, targets, reduction="sum"), 2 * by_hand)
    assert plain.loss(torch.zeros(2, 4), torch.zeros(2, 4)).item() == pytest.approx(plain.guess_loss(4))
    # a label's presence weighs pos_weight times its absence
    weighted = -(8 * targets * p.log() + (1 - targets) * (1 - p).log()).sum(1).mean()
    assert MULTI.pos_weight == 8 and torch.allclose(MULTI.loss(logits, targets), weighted)
    # the epoch's micro-F1 from histograms: both labels of the first text above 0.5, nothing else
    assert MULTI.score(MULTI.tally(logits, targets).tolist(), 2) == pytest.approx(2 / 3)


def test_best_threshold_maximizes_micro_f1_exactly():
    rng = np.random.default_rng(1)
    truth = rng.random((300, 5)) < 0.3
    probs = np.clip(truth * 0.3 + rng.random((300, 5)) * 0.7, 0, 1)

    def f1(t):
        pred = probs >= t
        tp = (pred & truth).sum()
        return 2 * tp / (pred.sum() + truth.sum())

    threshold, best = best_threshold(probs, truth)
    assert f1(threshold) == pytest.approx(best)
    assert best >= max(f1(t) for t in np.linspace(0, 1, 501)) - 1e-12


def test_model_keeps_the_validation_threshold_and_predict_applies_it(multi, invoke):
    _, _, run = multi
    meta = json.loads((run / "model.json").read_text())
    assert meta["task"] == "multi_label" and "val_micro_f1" in meta["best"]
    threshold = meta["decision"]["threshold"]
    assert 0 < threshold < 1 and meta["decision"]["chosen_on"] == "validation"
    assert [json.loads(x)["best"] for x in [json.dumps(meta)]] and "val_micro_f1" in (run / "metrics.jsonl").read_text()
    text = "match goal shares profit the a"
    record = json.loads(invoke("predict", "--model", run, "--format", "json", "-k", "4", text).stdout)
    probs = {t["label"]: t["probability"] for t in record["top"]}
    assert record["labels"] == [label for label, p in sorted(probs.items(), key=lambda kv: -kv[1]) if p >= threshold]
    assert record["probabilities"] == [probs[label] for label in record["labels"]]
    assert {"Sports", "Business"} <= set(record["labels"])
    every = json.loads(invoke("predict", "--model", run, "--format", "json", "--threshold", "0", text).stdout)
    assert len(every["labels"]) == 4
    none = json.loads(invoke("predict", "--model", run, "--format", "json", "--threshold", "1", text).stdout)
    assert none["labels"] == [] and none["probabilities"] == []
    forced = invoke("predict", "--model", run, "--format", "json", "--threshold", "1", "--min-labels", "1", text)
    assert json.loads(forced.stdout)["labels"] == [record["top"][0]["label"]]


def test_plain_python_and_numpy_predict_alike(multi, invoke, tmp_path):
    _, _, run = multi
    texts = ["match goal shares profit", "software chip", "the a of", "zzzz qqqq"]
    plain = [json.loads(invoke("predict", "--model", run, "--format", "json", t).stdout) for t in texts]
    (tmp_path / "t.txt").write_text("\n".join(texts) + "\n")
    batch = predicted(invoke, run, tmp_path / "t.txt")
    assert plain == batch
    assert batch[3]["labels"] == [] and batch[3]["abstained"] == "no known tokens"


def test_every_output_format_gives_the_label_list(multi, invoke, tmp_path):
    _, _, run = multi
    texts = ["match goal shares profit", "the a of"]
    (tmp_path / "t.txt").write_text("\n".join(texts) + "\n")
    records = predicted(invoke, run, tmp_path / "t.txt")
    as_json = json.loads(invoke("predict", "--model", run, "--file", tmp_path / "t.txt", "--format", "json").stdout)
    assert as_json == records
    rows = list(
        csv.DictReader(
            invoke(
                "predict", "--model", run, "--file", tmp_path / "t.txt", "--format", "csv", "-k", "2"
            ).stdout.splitlines()
        )
    )
    assert [r["labels"] for r in rows] == ["|".join(r["labels"]) for r in records]
    assert [r["probabilities"] for r in rows] == ["|".join(map(repr, r["probabilities"])) for r in records]
    assert rows[0]["top_1"] == records[0]["top"][0]["label"] and "top_2" in rows[0]
    table = invoke("predict", "--model", run, *texts).stdout
    for label in records[0]["labels"]:
        assert label in table
    explained = json.loads(invoke("predict", "--model", run, "--format", "json", "--explain", texts[0]).stdout)
    assert set(explained["explain"]) == set(records[0]["labels"])
    assert all(item["feature"] for items in explained["explain"].values() for item in items)


def test_evaluate_reports_set_metrics_that_match_predict(multi, invoke):
    corpus, _, run = multi
    report = json.loads(
        invoke(
            "evaluate", "--model", run, "--data", corpus / "test.jsonl", "--label-field", "labels", "--format", "json"
        ).stdout
    )
    assert report["task"] == "multi_label"
    for key in ("micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss", "cardinality", "decision"):
        assert key in report
    assert "confusion_matrix" not in report
    rows = multi_rows(80, seed=2)
    predicted = [
        json.loads(x)["labels"]
        for x in invoke(
            "predict", "--model", run, "--file", corpus / "test.jsonl", "--format", "jsonl"
        ).stdout.splitlines()
    ]
    tp = sum(len(set(p) & set(t)) for p, (_, t) in zip(predicted, rows, strict=True))
    fp = sum(len(set(p) - set(t)) for p, (_, t) in zip(predicted, rows, strict=True))
    fn = sum(len(set(t) - set(p)) for p, (_, t) in zip(predicted, rows, strict=True))
    assert report["micro_f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert report["subset_accuracy"] == pytest.approx(
        np.mean([set(p) == set(t) for p, (_, t) in zip(predicted, rows, strict=True)])
    )
    assert report["cardinality"]["true"] == pytest.approx(np.mean([len(t) for _, t in rows]))
    assert report["per_class"]["Sports"]["support"] == counts(rows)["Sports"]
    table = invoke("evaluate", "--model", run, "--data", corpus / "test.jsonl", "--label-field", "labels")
    assert "per label" in table.stdout and "confusion matrix" not in table.stdout


def test_fail_under_checks_micro_f1_by_default(multi, invoke):
    corpus, _, run = multi
    args = ("evaluate", "--model", run, "--data", corpus / "test.jsonl", "--label-field", "labels", "--format", "json")
    passed = invoke(*args, "--fail-under", "0.1")
    assert passed.exit_code == 0 and json.loads(passed.stdout)["thresholds"][0]["metric"] == "micro_f1"
    actual = json.loads(passed.stdout)["micro_f1"]
    assert invoke(*args, "--fail-under", "1").exit_code == (1 if actual < 1 else 0)
    assert invoke(*args, "--fail-under", f"micro_f1={actual}").exit_code == 0
    wrong = invoke(*args, "--fail-under", "accuracy=0.5")
    assert wrong.exit_code == 2 and "a model of several labels per text reports no accuracy" in wrong.stderr


def test_info_and_the_api_show_the_task(multi, invoke):
    import classify_cli

    _, _, run = multi
    info = json.loads(invoke("info", run, "--format", "json").stdout)
    assert info["task"] == "multi_label" and info["decision"]["threshold"] > 0
    model = classify_cli.load(run)
    assert model.task == "multi_label"
    (record,) = model.predict(["match goal shares profit"], threshold=0.0)
    assert len(record["labels"]) == 4
    with pytest.raises(ValueError, match="between 0 and 1"):
        model.predict(["x"], threshold=2)


def test_unknown_labels_in_evaluation_data_are_counted_not_fatal(multi, invoke, tmp_path):
    _, _, run = multi
    rows = [(t, [*labels, "Weather"] if i % 3 == 0 else labels) for i, (t, labels) in enumerate(multi_rows(30, seed=9))]
    write_jsonl(tmp_path / "new.jsonl", rows)
    result = invoke(
        "evaluate", "--model", run, "--data", tmp_path / "new.jsonl", "--label-field", "labels", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["unknown_labels"] == {"left_out": 10, "labels": {"Weather": 10}} and report["n"] == 30
    assert "left out 10 labels the model does not know: Weather 10" in result.stderr


def test_resume_is_exact_on_multi_label_data(multi, tmp_path):
    from classify_cli.train.run import train
    from classify_cli.util.config import load_config
    from classify_cli.util.errors import Interrupted

    _, data, _ = multi
    (tmp_path / "c.toml").write_text(CONFIG.format(epochs=3))
    cfg = load_config(tmp_path / "c.toml")
    train(data, tmp_path / "full", cfg, log=lambda m: None)
    calls = iter(range(10**6))
    with pytest.raises(Interrupted):
        train(data, tmp_path / "cut", cfg, log=lambda m: None, should_stop=lambda: next(calls) >= 30)
    train(None, tmp_path / "cut", None, resume=True, log=lambda m: None)
    assert_same_model(tmp_path / "full", tmp_path / "cut")
    assert (
        json.loads((tmp_path / "cut" / "model.json").read_text())["decision"]
        == json.loads((tmp_path / "full" / "model.json").read_text())["decision"]
    )


def test_torchrun_trains_a_multi_label_model(multi, tmp_path, invoke):
    _, data, _ = multi
    (tmp_path / "c.toml").write_text(CONFIG.format(epochs=3))
    ranks = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "classify_cli",
            "train",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "two"),
            "--config",
            str(tmp_path / "c.toml"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert ranks.returncode == 0, ranks.stderr
    assert invoke("train", "--data", data, "--out", tmp_path / "one", "--config", tmp_path / "c.toml").exit_code == 0
    two, one = (json.loads((tmp_path / r / "model.json").read_text()) for r in ("two", "one"))
    assert two["world_size"] == 2 and two["task"] == "multi_label" and "decision" in two
    reports = [
        json.loads(invoke("evaluate", "--model", tmp_path / r, "--format", "json").stdout) for r in ("two", "one")
    ]
    assert abs(reports[0]["micro_f1"] - reports[1]["micro_f1"]) <= 0.05


# --- bad input: one error line, exit 2, nothing written ------------------------------------------


def _refused(invoke, tmp_path, name: str, content: str, *extra: str) -> str:
    path = tmp_path / name
    path.write_text(content)
    out = tmp_path / "out"
    result = invoke("prepare", "--from", path, "--out", out, "--label-field", "labels", *extra)
    assert result.exit_code == 2, result.output
    assert not out.exists()
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    return line


GOOD = [json.dumps({"text": f"match goal {i}", "labels": ["Sports"]}) for i in range(10)]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            [*GOOD, json.dumps({"text": "shares", "labels": "Business"})],
            "the label is a single label, earlier rows hold label lists",
        ),
        (
            [json.dumps({"text": "shares", "labels": "Business"}), *GOOD],
            "the label is a list, earlier rows hold single labels",
        ),
        ([*GOOD, json.dumps({"text": "shares", "labels": [True]})], "label must be a string or an integer"),
        ([*GOOD, json.dumps({"text": "shares", "labels": [1.5]})], "label must be a string or an integer"),
        ([*GOOD, json.dumps({"text": "shares", "labels": [None]})], "label must be a string or an integer"),
        ([*GOOD, json.dumps({"text": "shares", "labels": ["Business", ""]})], "empty label in a label list"),
        ([*GOOD, json.dumps({"text": "shares", "labels": [["Business"]]})], "a label list holds a list"),
    ],
)
def test_bad_label_lists_are_refused(invoke, tmp_path, lines, message):
    assert message in _refused(invoke, tmp_path, "t.jsonl", "\n".join(lines) + "\n")


def test_separator_problems_are_refused(invoke, tmp_path):
    csv_text = "text,labels\n" + "".join(f"match goal {i},Sports|Business\n" for i in range(10))
    assert "empty label in 'Sports||Business'" in _refused(
        invoke, tmp_path, "a.csv", csv_text + "shares,Sports||Business\n", "--label-sep", "|"
    )
    assert "--label-sep ';' occurs in no label" in _refused(invoke, tmp_path, "b.csv", csv_text, "--label-sep", ";")
    listed = "\n".join(json.dumps({"text": f"t {i}", "labels": ["Sports|Business"]}) for i in range(10))
    assert "holds the label separator '|'" in _refused(invoke, tmp_path, "c.jsonl", listed, "--label-sep", "|")
    single = "\n".join(json.dumps({"text": f"t {i}", "labels": ["Sports"]}) for i in range(10))
    assert "need --task multi" in _refused(invoke, tmp_path, "d.jsonl", single, "--task", "single")


def test_threshold_out_of_range_or_on_a_single_label_model_is_refused(multi, trained, invoke):
    _, _, run = multi
    for value in ("-0.1", "1.5", "nan"):
        result = invoke("predict", "--model", run, "--threshold", value, "match")
        assert result.exit_code == 2 and "--threshold must be between 0 and 1" in result.stderr, result.output
    result = invoke("predict", "--model", trained[2], "--threshold", "0.5", "match")
    assert result.exit_code == 2 and "several labels per text" in result.stderr
    result = invoke("predict", "--model", run, "--min-confidence", "0.5", "match")
    assert result.exit_code == 2 and "--min-confidence is for a model of one label per text" in result.stderr


# --- everything else follows the task ---------------------------------------------------------


def test_compress_ranks_features_for_sigmoids_and_chooses_its_own_threshold(multi, invoke, tmp_path):
    _, _, run = multi
    result = invoke("compress", "--model", run, "--out", tmp_path / "small", "--max-features", "40")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert "validation_micro_f1" in summary and "validation_accuracy" not in summary
    assert summary["validation_micro_f1"]["after"] >= summary["validation_micro_f1"]["before"] - 0.1
    small = json.loads((tmp_path / "small" / "model.json").read_text())
    # the smaller model's own threshold, chosen on the same validation split
    assert small["decision"]["chosen_on"] == "validation"
    assert small["decision"]["micro_f1"] == pytest.approx(summary["validation_micro_f1"]["after"])
    record = json.loads(invoke("predict", "--model", tmp_path / "small", "--format", "json", "match goal").stdout)
    assert "Sports" in record["labels"]


def test_tune_judges_trials_by_micro_f1(multi, invoke, tmp_path):
    pytest.importorskip("optuna")
    _, data, _ = multi
    tuned = tmp_path / "tuned"
    result = invoke("tune", "--data", data, "--out", tuned, "--trials", "2", "--folds", "1", "--format", "json")
    assert result.exit_code == 0, result.output
    meta = json.loads((tuned / "model.json").read_text())
    assert meta["tuned"]["metric"] == "micro_f1" and "decision" in meta
    wrong = invoke("tune", "--data", data, "--out", tmp_path / "t2", "--trials", "1", "--metric", "accuracy")
    assert wrong.exit_code == 2 and "judged by one of micro_f1" in wrong.stderr


def test_report_draws_per_label_scores_instead_of_a_confusion_matrix(multi, invoke, tmp_path):
    pytest.importorskip("matplotlib")
    corpus, _, run = multi
    result = invoke("report", run, "--out", tmp_path / "pics", "--data", corpus / "test.jsonl")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "pics").iterdir()) == ["curves.png", "per_label.png"]


def test_a_single_label_model_still_predicts_its_own_record(trained, invoke):
    record = json.loads(invoke("predict", "--model", trained[2], "--format", "json", "shares profit").stdout)
    assert set(record) == {"text", "label", "probability", "top"}


def test_report_history_draws_the_set_metrics_and_skips_another_tasks_reports(multi, trained, invoke, tmp_path):
    pytest.importorskip("matplotlib")
    corpus, _, run = multi
    reports = tmp_path / "reports"
    reports.mkdir()
    args = ("--data", corpus / "test.jsonl", "--label-field", "labels")
    for day in ("a", "b"):
        assert invoke("evaluate", "--model", run, *args, "--output", reports / f"{day}.json").exit_code == 0
    single = invoke("evaluate", "--model", trained[2], "--output", tmp_path / "old.json")
    assert single.exit_code == 0
    old = json.loads((tmp_path / "old.json").read_text())
    old["evaluated_at"] = "2020-01-01T00:00:00+00:00"  # the oldest: the newest reports' task is drawn
    (reports / "z-single.json").write_text(json.dumps(old))
    result = invoke("report", "--history", reports, "--out", tmp_path / "pics")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "pics").iterdir())
    assert "history-micro_f1.png" in names and "history-subset_accuracy.png" in names
    assert "history-accuracy.png" not in names
    assert "skipped" in result.stderr and "z-single.json" in result.stderr


def test_a_model_trained_on_csv_reads_its_separator_back_in_evaluate_and_predict(invoke, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_csv(corpus / "train.csv", multi_rows(300, seed=11), sep=";")
    write_csv(corpus / "test.csv", multi_rows(60, seed=12), sep=";")
    (tmp_path / "c.toml").write_text(CONFIG.format(epochs=3))
    common = ("--config", tmp_path / "c.toml")
    args = ("--from", corpus, "--out", tmp_path / "data", "--label-field", "tags", "--label-sep", ";")
    assert invoke("prepare", *args, *common).exit_code == 0
    assert invoke("train", "--data", tmp_path / "data", "--out", tmp_path / "run", *common).exit_code == 0
    # the CSV file's labels are split at the separator the model was trained with, unasked
    on_file = json.loads(
        invoke("evaluate", "--model", tmp_path / "run", "--data", corpus / "test.csv", "--format", "json").stdout
    )
    on_split = json.loads(invoke("evaluate", "--model", tmp_path / "run", "--format", "json").stdout)
    assert on_file["micro_f1"] == pytest.approx(on_split["micro_f1"]) and on_file["unknown_labels"]["labels"] == {}
    rows = list(
        csv.DictReader(
            invoke(
                "predict", "--model", tmp_path / "run", "--file", corpus / "test.csv", "--format", "csv"
            ).stdout.splitlines()
        )
    )
    assert any(";" in r["labels"] for r in rows) and not any("|" in r["labels"] for r in rows)


def test_evaluate_reads_label_lists_only_with_a_model_of_several_and_says_which_separator(
    multi, trained, invoke, tmp_path
):
    corpus, _, run = multi
    single = invoke("evaluate", "--model", trained[2], "--data", corpus / "test.jsonl", "--label-field", "labels")
    assert single.exit_code == 2 and "the labels are lists" in single.stderr and "Traceback" not in single.output
    rows = multi_rows(60, seed=2)
    # a model trained on lists reads "|"-joined labels, as its own CSV output writes them
    write_csv(tmp_path / "bars.csv", rows, sep="|")
    bars = invoke(
        "evaluate", "--model", run, "--data", tmp_path / "bars.csv", "--label-field", "tags", "--format", "json"
    )
    assert bars.exit_code == 0 and json.loads(bars.stdout)["unknown_labels"]["left_out"] == 0
    write_csv(tmp_path / "semis.csv", rows, sep=";")
    args = ("evaluate", "--model", run, "--data", tmp_path / "semis.csv", "--label-field", "tags")
    wrong = invoke(*args)
    assert wrong.exit_code == 2 and "give it with --label-sep" in wrong.stderr
    right = invoke(*args, "--label-sep", ";", "--format", "json")
    assert right.exit_code == 0 and json.loads(right.stdout)["micro_f1"] == json.loads(bars.stdout)["micro_f1"]


def test_per_label_thresholds_are_kept_scored_and_reported(multi, invoke, tmp_path):
    corpus, data, _ = multi
    (tmp_path / "c.toml").write_text(CONFIG.format(epochs=3))
    args = ("--data", data, "--out", tmp_path / "run", "--config", tmp_path / "c.toml")
    assert invoke("train", *args, "--set", 'model.thresholds="per_label"').exit_code == 0
    decision = json.loads((tmp_path / "run" / "model.json").read_text())["decision"]
    assert set(decision["thresholds"]) <= set(TOPICS) and decision["thresholds"]  # labels with 20 validation texts
    report = json.loads(invoke("evaluate", "--model", tmp_path / "run", "--format", "json").stdout)
    assert report["decision"] == decision and isinstance(report["decision"]["threshold"], float)
