"""A model saved before n-grams were hashed by multiply-shift (``tests/data/legacy-model``:
trained by git 012ea9e on ``conftest.write_ag_dir`` data, its outputs recorded then) still
loads and scores exactly as it did: numpy's head (``evaluate``, ``predict --file``), the
plain-Python one (``predict TEXT``), and ``compress``, which keeps its hash."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import edit_json, write_ag_dir

LEGACY = Path(__file__).parent / "data" / "legacy-model"


@pytest.fixture
def legacy(tmp_path) -> Path:
    run = tmp_path / "legacy"
    run.mkdir()
    for file in LEGACY.glob("model*"):
        shutil.copy(file, run)
    return run


def _texts() -> list[str]:
    return (LEGACY / "texts.txt").read_text().splitlines()


def _expected() -> list[dict]:
    return [json.loads(line) for line in (LEGACY / "expected-predict.jsonl").read_text().splitlines()]


def test_a_legacy_model_scores_as_it_did(invoke, legacy):
    assert "ngram_hash" not in json.loads((legacy / "model.json").read_text())["head"]
    described = json.loads(invoke("info", legacy, "--format", "json").stdout)
    assert described["features"]["ngram_hash"] == "prime-mod"
    # numpy's Head, batch by batch
    got = invoke("predict", "--model", legacy, "--file", LEGACY / "texts.txt", "-k", "4", "--format", "jsonl")
    assert got.exit_code == 0, got.output
    assert [json.loads(line) for line in got.stdout.splitlines()] == _expected()
    result = invoke("evaluate", "--model", legacy, "--data", LEGACY / "test.csv", "--format", "json")
    recorded = json.loads((LEGACY / "expected-evaluate.json").read_text())
    scored = json.loads(result.stdout)
    assert scored["accuracy"] == recorded["accuracy"] and scored["loss"] == pytest.approx(recorded["loss"], rel=1e-6)


@pytest.mark.parametrize("i", range(3))
def test_a_legacy_model_predicts_text_as_it_did_in_pure_python(legacy, i):
    # `predict TEXT --format json` for one text in a fresh process: the plain head, no numpy
    code = (
        "import sys; from classify_cli.cli import main\n"
        f"sys.argv = ['classify', 'predict', '--model', {str(legacy)!r}, '-k', '4', '--format', 'json', {_texts()[i]!r}]\n"
        "try:\n    main()\nfinally:\n    print('numpy' in sys.modules, file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stderr.strip() == "False", out.stderr
    assert json.loads(out.stdout) == _expected()[i]


def test_the_recorded_hash_is_the_one_used(invoke, legacy):
    # the same tables read as multiply-shift: the bigrams find other rows, and the scores move
    edit_json(legacy / "model.json", lambda meta: meta["head"].update(ngram_hash="multiply-shift"))
    result = invoke("evaluate", "--model", legacy, "--data", LEGACY / "test.csv", "--format", "json")
    recorded = json.loads((LEGACY / "expected-evaluate.json").read_text())
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["loss"] != pytest.approx(recorded["loss"], rel=1e-3)


def test_compressing_a_legacy_model_keeps_its_hash(invoke, legacy, tmp_path):
    # the data it was trained on, made again as it was (prepare is deterministic): compress
    # reads its validation split
    config = tmp_path / "c.toml"
    config.write_text("[prepare]\nvalidation_fraction = 0.2\n")
    corpus = write_ag_dir(tmp_path / "corpus", n_train=60, n_test=15)
    assert invoke("prepare", "--from", corpus, "--out", tmp_path / "data", "--config", config).exit_code == 0
    small = tmp_path / "small"
    result = invoke("compress", "--model", legacy, "--out", small, "--max-features", "200", "--data", tmp_path / "data")
    assert result.exit_code == 0, result.output
    assert json.loads((small / "model.json").read_text())["head"]["ngram_hash"] == "prime-mod"
    got = invoke("predict", "--model", small, "--file", LEGACY / "texts.txt", "--format", "jsonl")
    labels = [json.loads(line)["label"] for line in got.stdout.splitlines()]
    assert labels == [e["label"] for e in _expected()]
