"""Text from data reaches a terminal escaped: labels and tokens cannot drive the terminal."""

import json

import pytest

from .conftest import make_rows, write_jsonl

HOSTILE = {"World": "\x1b[31mRED", "Sports": "\x1b]0;title\x07", "Business": "[bold]x[/]", "Sci/Tech": "Sci/Tech"}


@pytest.fixture
def hostile_run(invoke, tmp_path, tiny_config):
    rows = [(HOSTILE[label], text) for label, text in make_rows(25)]
    corpus = write_jsonl(tmp_path / "train.jsonl", rows)
    prepared = invoke("prepare", "--from", corpus, "--out", tmp_path / "data", "--config", tiny_config)
    assert prepared.exit_code == 0, prepared.output
    trained = invoke("train", "--data", tmp_path / "data", "--out", tmp_path / "run", "--config", tiny_config)
    assert trained.exit_code == 0, trained.output
    return prepared, tmp_path / "run", corpus


def test_labels_are_escaped_in_every_table(invoke, hostile_run):
    prepared, run, corpus = hostile_run
    predicted = invoke("predict", "--model", run, "-k", "4", "--explain", "goal coach \x1b[2J season")
    evaluated = invoke("evaluate", "--model", run, "--data", corpus)
    for result in (prepared, predicted, evaluated):
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\\x1b[31mRED" in prepared.stdout and "\\x1b]0;title\\x07" in prepared.stdout
    assert "[bold]x[/]" in predicted.stdout  # shown as text, not taken for markup
    assert "\\x1b[2j" in predicted.stdout  # the token, lowercased, in the explain rows


def test_json_keeps_the_labels_exact(invoke, hostile_run):
    _, run, _ = hostile_run
    result = invoke("predict", "--model", run, "--format", "json", "-k", "4", "goal coach season")
    assert result.exit_code == 0, result.output
    assert {t["label"] for t in json.loads(result.stdout)["top"]} == set(HOSTILE.values())
