import csv
import json
from pathlib import Path

import numpy as np
import pytest

from .conftest import modules_imported_by, write_header_csv


def test_evaluate_json_on_prepared_test_split(invoke, trained):
    _, data, run = trained
    result = invoke("evaluate", "--model", run, "--data", data, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # exactly one JSON object on stdout
    assert report["n"] == 60
    assert 0.5 < report["accuracy"] <= 1.0
    assert report["labels"] == ["World", "Sports", "Business", "Sci/Tech"]
    assert set(report["per_class"]["World"]) == {"precision", "recall", "f1", "support"}
    cm = np.array(report["confusion_matrix"])
    assert cm.shape == (4, 4) and cm.sum() == 60
    assert cm.sum(axis=1).tolist() == [report["per_class"][lab]["support"] for lab in report["labels"]]
    assert np.isclose(np.trace(cm) / 60, report["accuracy"])
    for key in ("macro_f1", "loss", "weighted_f1", "ece"):
        assert isinstance(report[key], float)


def test_evaluate_raw_directory_matches_prepared(invoke, trained):
    corpus, data, run = trained
    a = json.loads(invoke("evaluate", "--model", run, "--data", data, "--format", "json").stdout)
    b = json.loads(invoke("evaluate", "--model", run, "--data", corpus, "--format", "json").stdout)
    assert a["confusion_matrix"] == b["confusion_matrix"]
    assert np.isclose(a["loss"], b["loss"])


def test_evaluate_table_output(invoke, trained):
    _, data, run = trained
    result = invoke("evaluate", "--model", run, "--data", data)
    assert result.exit_code == 0
    assert "accuracy" in result.stdout and "confusion matrix" in result.stdout
    assert "\x1b[" not in result.stdout  # no ANSI codes when not a terminal


def test_evaluate_counts_unknown_labels(invoke, trained, tmp_path):
    _, _, run = trained
    path = write_header_csv(
        tmp_path / "batch.csv",
        [("Sports", "coach match goal"), ("Weather", "rain storm"), ("World", "troops minister")],
    )
    result = invoke("evaluate", "--model", run, "--data", path, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n"] == 2
    assert report["unknown_labels"] == {"rows": 1, "labels": {"Weather": 1}}
    for fmt in ("json", "table"):  # said on stderr too, where a person running it looks
        result = invoke("evaluate", "--model", run, "--data", path, "--format", fmt)
        assert "warning: skipped 1 rows whose label the model does not know: Weather 1" in result.stderr
        assert "Weather" not in result.stdout.split("confusion")[0] or fmt == "json"


@pytest.mark.parametrize(
    "known, code, line",
    [
        (True, 0, "warning: skipped 1,000 rows whose label the model does not know: x0000 1, x0001 1, x0002 1, "),
        (False, 2, "error: none of the labels in "),
    ],
    ids=["some-known", "none-known"],
)
def test_a_thousand_unknown_labels_make_a_short_message(invoke, trained, tmp_path, known, code, line):
    """Every label listed made a line of many kilobytes: at most five, and how many more."""
    _, _, run = trained
    rows = [(f"x{i:04d}", "rain storm") for i in range(1000)] + ([("Sports", "coach match goal")] if known else [])
    path = write_header_csv(tmp_path / "batch.csv", rows)
    result = invoke("evaluate", "--model", run, "--data", path, "--format", "json")
    assert result.exit_code == code, result.output
    (message,) = [m for m in result.stderr.splitlines() if m.startswith(line)]
    assert "x0004" in message and "x0005" not in message and "… (995 more)" in message
    assert len(message) < 300, message


def _ag_batch(path: Path, rows: list[list[str]], classes: bool) -> Path:
    path.mkdir()
    if classes:
        (path / "classes.txt").write_text("World\nSports\nBusiness\nSci/Tech\n")
    with open(path / "batch.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, quoting=csv.QUOTE_ALL).writerows(rows)
    return path / "batch.csv"


AG_ROWS = [["2", "Coach", "match goal"], ["9", "Rain", "storm warning"], ["1", "Troops", "minister treaty"]]


def test_evaluate_counts_class_indices_outside_classes_txt(invoke, trained, tmp_path):
    _, _, run = trained
    batch = _ag_batch(tmp_path / "ag", AG_ROWS, classes=True)
    result = invoke("evaluate", "--model", run, "--data", batch, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n"] == 2
    assert report["unknown_labels"] == {"rows": 1, "labels": {"9": 1}}
    # a corpus to train on is held to its classes.txt
    result = invoke("prepare", "--from", batch, "--out", tmp_path / "data")
    assert result.exit_code == 2 and "class index 9 outside classes.txt (1-4)" in result.stderr


def test_evaluate_class_indices_without_classes_txt_say_what_is_missing(invoke, trained, tmp_path):
    _, _, run = trained
    batch = _ag_batch(tmp_path / "ag", AG_ROWS, classes=False)
    result = invoke("evaluate", "--model", run, "--data", batch)
    assert result.exit_code == 2
    assert "none of the labels" in result.stderr and "need a classes.txt" in result.stderr


def test_predict_json_and_top_k(invoke, trained):
    _, _, run = trained
    result = invoke("predict", "--model", run, "--format", "json", "-k", "3", "The striker scored in the league match")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["label"] == "Sports"
    assert len(out["top"]) == 3
    probs = [t["probability"] for t in out["top"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
    several = json.loads(invoke("predict", "--model", run, "--format", "json", "bank shares", "space chip").stdout)
    assert isinstance(several, list) and len(several) == 2


def test_predict_table(invoke, trained):
    _, _, run = trained
    result = invoke("predict", "--model", run, "Quarterly earnings beat the market")
    assert result.exit_code == 0 and "Business" in result.stdout


def test_predict_table_streams_a_file_as_one_table(invoke, trained, tmp_path, monkeypatch):
    """Printed batch by batch (so a long file neither waits nor grows), one header, columns aligned."""
    import classify_cli.serve.prediction

    _, _, run = trained
    monkeypatch.setattr(classify_cli.serve.prediction, "BATCH", 7)
    texts = [f"goal coach season number {i}" for i in range(30)] + ["bank shares profit market"] * 5
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(texts) + "\n")
    result = invoke("predict", "--model", run, "--file", path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["text", "label", "probability"] and set(lines[1]) == {"─"}
    assert len(lines) == 2 + len(texts) and result.stdout.count("probability") == 1
    assert len({line.index(line.split()[-1]) + len(line.split()[-1]) for line in lines[2:]}) == 1  # one right edge
    jsonl = invoke("predict", "--model", run, "--file", path, "--format", "jsonl").stdout.splitlines()
    assert [line.split()[-2] for line in lines[2:]] == [json.loads(r)["label"] for r in jsonl]


def test_explain_is_its_own_column_and_nothing_for_unknown_text(invoke, trained):
    _, _, run = trained
    table = invoke("predict", "--model", run, "--explain", "goal coach season").stdout.splitlines()
    assert table[0].split() == ["text", "label", "probability", "contribution"]
    assert table[3].lstrip().startswith("+ ") and table[3].split()[-1].startswith(("+", "-"))
    unknown = json.loads(invoke("predict", "--model", run, "--format", "json", "--explain", "zzzz qqqq").stdout)
    assert unknown["abstained"] == "no known tokens" and unknown["explain"] == []
    refused = invoke("predict", "--model", run, "--format", "csv", "--explain", "goal")
    assert refused.exit_code == 2 and "--explain is shown in table, json, jsonl output" in refused.stderr


@pytest.mark.parametrize("weighting", ["tfidf-l2", "tfidf", "mean", "tfidf-sum"])
def test_scoring_table_matches_torch_model(trained, weighting):
    """The numpy head over the scoring table gives the torch model's logits: IDF folded into
    the table, the norm per document, unseen n-grams on the shared zero row."""
    torch = pytest.importorskip("torch")
    from classify_cli.data.prepared import load_prepared
    from classify_cli.model.feature_sets import fit_features
    from classify_cli.model.features import norm_of
    from classify_cli.model.head import Head, describe, scoring_tensors
    from classify_cli.text.token_table import TokenTable
    from classify_cli.text.tokens import encode_token
    from classify_cli.train.net import TextClassifier, class_table
    from classify_cli.util.config import ModelConfig

    _, data_dir, _ = trained
    data = load_prepared(data_dir)
    cfg = ModelConfig(embed_dim=8, buckets=997, weighting=weighting)
    features, _ = fit_features(data.splits["train"], len(data.vocab), cfg, len(data.labels))
    test = data.splits["test"]
    feature_set = features.make_set(test)
    model = TextClassifier(features.row_map.num_rows, 8, len(data.labels))
    torch.manual_seed(3)
    with torch.no_grad():  # every row random, the unseen row zero as training keeps it
        model.embedding.weight.normal_()
        model.embedding.weight[-1].zero_()
        model.fc.bias.normal_()
        rows, offsets = feature_set.all_rows()
        expected = model(
            torch.from_numpy(rows.astype(np.int64)),
            torch.from_numpy(offsets[:-1]),
            torch.from_numpy(feature_set.all_weights()),
        ).numpy()
    vocab = TokenTable.build([encode_token(t) for t in data.vocab.itos], range(len(data.vocab)), data.vocab.unk_index)
    norm = norm_of(weighting)
    best = class_table(model, features.row_map)
    seen = features.row_map.seen_buckets
    tensors = scoring_tensors(best["table"], best["bias"], seen, features.idf, norm, vocab)
    head = Head(tensors, describe(tensors, features.spec, data.vocab.unk_index, norm))
    np.testing.assert_allclose(head.logits(test.ids.astype(np.int64), test.offsets), expected, rtol=1e-4, atol=1e-5)


def test_missing_model_is_one_clear_line(invoke, tmp_path):
    result = invoke("predict", "--model", tmp_path / "none", "text")
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "no model" in result.stderr


def test_predict_does_not_import_torch(trained):
    _, _, run = trained
    assert modules_imported_by(["predict", "--model", run, "--format", "json", "bank shares rally"], ("torch",)) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            "fancyzhx/ag_news",
            "evaluate reads local data; for the Hub dataset, run `classify prepare --from fancyzhx/ag_news` first",
        ),
        ("news.cvs", "no such file or directory: news.cvs\n"),
    ],
)
def test_evaluate_tells_a_hub_name_from_a_missing_file(invoke, trained, data, message):
    _, _, run = trained
    result = invoke("evaluate", "--model", run, "--data", data)
    assert result.exit_code == 2 and result.stderr.startswith("error: no such file or directory: ")
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_evaluate_defaults_to_the_training_data(invoke, trained):
    _, data, run = trained
    result = invoke("evaluate", "--model", run, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["data"].startswith(str(data))


def test_unknown_format_is_a_usage_error(invoke, trained):
    _, _, run = trained
    result = invoke("evaluate", "--model", run, "--format", "yaml")
    assert result.exit_code == 2
