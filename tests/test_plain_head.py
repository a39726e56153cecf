"""`predict TEXT` labels in plain Python (no numpy to import): numpy's logits to the bit, and its
records, table and JSON to the digits printed, for full and compressed models."""

import random

import numpy as np
import pytest
from typer.testing import CliRunner

from classify_cli.cli import app
from classify_cli.model.bundle import load_bundle
from classify_cli.model.inference import Predictor
from classify_cli.model.plain_head import PlainHead, segment_sum
from classify_cli.serve import plain_labels
from classify_cli.serve.prediction import Options, label_columns, records_of
from classify_cli.text.token_keys import key_of, slot_of
from classify_cli.text.token_table import _keys, _slots
from classify_cli.util.floats import pairwise_sum
from classify_cli.util.ragged import segment_sum as numpy_segment_sum

from .conftest import TOPICS, make_rows, write_header_csv

LONG_WORDS = ["supercalifragilistic", "examplecom/a/long/path", "market-moving-announcements"]


def _texts() -> list[str]:
    rng = random.Random(3)
    words = " ".join(TOPICS.values()).split()
    texts = [text for _, text in make_rows(5, seed=7)]
    texts += [" ".join(rng.choice(words) for _ in range(n)) for n in (1, 2, 7, 8, 9, 17, 129, 300, 1100)]
    texts += ["", "   ", "zzqx unknownword", "a\x00b", "Shares #39;rally&amp; &lt;b&gt; back\\slash <br />x"]
    texts += [" ".join(LONG_WORDS) + " goal supercalifragilisticexpialidocious", "ΑΣ σ 日本語 a\u2028b\xa0c"]
    return texts


TEXTS = _texts()


@pytest.fixture(scope="module")
def models(trained, tmp_path_factory) -> dict:
    """The session's model; one with other features (l1 norm, trigrams); compressed copies of each dtype."""
    _, _, run = trained
    base = tmp_path_factory.mktemp("plain")
    runner = CliRunner()
    found = {"float32": run, "l1, trigrams": base / "l1"}
    # words of more than 15 bytes: the vocabulary looks them up in full, not by their key
    rows = [(label, f"{text} {LONG_WORDS[i % 3]}") for i, (label, text) in enumerate(make_rows(25, seed=5))]
    corpus = write_header_csv(base / "long.csv", rows)
    for args in (
        ["prepare", "--from", corpus, "--out", base / "data", "--text-field", "text", "--label-field", "label"],
        ["train", "--data", base / "data", "--out", base / "l1", "--epochs", "2", "--device", "cpu"]
        + ["--set", "model.weighting=tfidf", "--set", "model.ngrams=3", "--set", "model.buckets=3000"],
    ):
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output
    for dtype in ("int8", "float16", "float32"):
        out = base / f"small-{dtype}"
        args = ["compress", "--model", run, "--out", out, "--dtype", dtype, "--max-features", "60"]
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        found[f"compressed {dtype}"] = out
    return found


def test_the_models_cover_what_the_scorer_reads(models):
    from classify_cli.model.meta import read_meta

    heads = {name: read_meta(run)["head"] for name, run in models.items()}
    assert {h["norm"] for h in heads.values()} == {"l1", "l2"} and {h["ngrams"] for h in heads.values()} == {2, 3}
    assert {h["dtype"] for h in heads.values()} == {"float32", "float16", "int8"}
    assert all(h["kept_words"] < h["vocab_size"] for name, h in heads.items() if "compressed" in name)
    assert heads["l1, trigrams"]["long_tokens"] == len(LONG_WORDS)


def _groups(texts: list[str]):
    """The texts a few at a time, as command lines give them."""
    rng = random.Random(1)
    i = 0
    while i < len(texts):
        n = rng.randint(1, 4)
        yield texts[i : i + n]
        i += n


@pytest.mark.parametrize(
    "name", ["float32", "l1, trigrams", "compressed int8", "compressed float16", "compressed float32"]
)
def test_logits_are_numpys_to_the_bit(models, name):
    numpy_side, plain = Predictor(load_bundle(models[name])), PlainHead(models[name])
    for texts in _groups(TEXTS):
        scored = numpy_side.score(texts)
        logits, known = plain.score(texts)
        assert np.array(logits, dtype=np.float32).tobytes() == scored.logits.tobytes(), texts
        assert np.array_equal(np.array(logits), scored.logits.astype(np.float64))  # float32 values, exactly
        assert known == scored.known.tolist()


@pytest.mark.parametrize("name", ["float32", "l1, trigrams", "compressed int8"])
def test_records_are_numpys_to_the_digit(models, name):
    numpy_side, plain = Predictor(load_bundle(models[name])), PlainHead(models[name])
    opts = Options(k=len(plain.labels), min_confidence=0.4)
    for texts in _groups(TEXTS):
        expected = records_of(label_columns(numpy_side, texts, opts), numpy_side, opts)
        assert records_of(plain_labels.label_columns(plain, texts, opts), plain, opts) == expected


@pytest.mark.parametrize(
    "args",
    [
        ["goal coach season"],
        ["-k", "3", "shares profit market", "goal coach", "zzqx"],
        ["--min-confidence", "0.9", "software chip", ""],
        ["--format", "json", "-k", "2", "minister election embassy"],
        ["--format", "json", "zzqx"],
    ],
)
def test_predict_prints_what_the_numpy_path_prints(invoke, models, monkeypatch, args):
    for run in (models["float32"], models["compressed int8"]):
        plain = invoke("predict", "--model", run, *args)
        with monkeypatch.context() as patched:
            patched.setattr(plain_labels, "MAX_CHARS", -1)  # every text to numpy
            numpy_side = invoke("predict", "--model", run, *args)
        assert plain.exit_code == numpy_side.exit_code == 0, plain.output
        assert plain.stdout == numpy_side.stdout


@pytest.mark.parametrize(
    ("texts", "fmt", "explain", "expected"),
    [
        (["a", "b"], "table", False, True),
        (["a"], "json", False, True),
        (["a", "b"], "json", False, False),  # a list of objects: numpy's formatter
        (["a"], "jsonl", False, False),
        (["a"], "table", True, False),
        (["x" * 10_001], "table", False, False),  # numpy labels that much text sooner than it is imported
    ],
)
def test_which_texts_are_labeled_in_plain_python(texts, fmt, explain, expected):
    assert plain_labels.applies(texts, fmt, explain) is expected


@pytest.mark.parametrize("n", [*range(0, 140), 255, 256, 257, 1000, 1031, 4099])
def test_sums_are_numpys(n):
    rng = np.random.default_rng(n)
    values = (rng.standard_normal((n, 3)) * 10.0 ** rng.integers(-3, 4)).astype(np.float32)
    expected = numpy_segment_sum(values, np.array([0, n]))[0]  # reduceat over rows
    assert [segment_sum(values[:, c].tolist()) for c in range(3)] == expected.tolist()
    assert segment_sum(values[:, 0].copy().tolist()) == numpy_segment_sum(values[:, 0].copy(), np.array([0, n]))[0]
    row = rng.random((1, n))  # a softmax's sum over its classes, in float64
    assert pairwise_sum(row[0].tolist(), float) == row.sum(axis=1, keepdims=True)[0, 0]


def test_token_keys_and_slots_are_the_tables():
    rng = random.Random(0)
    tokens = [bytes(rng.randrange(33, 256) for _ in range(rng.randint(1, 15))) for _ in range(3000)]
    data = b" ".join(tokens)
    starts = np.cumsum([0] + [len(t) + 1 for t in tokens[:-1]])
    first, second = _keys(data, starts, np.array([len(t) for t in tokens]))
    for bits in (10, 17, 30):
        slots = _slots(first, second, bits)
        for token, f, s, slot in zip(tokens, first.tolist(), second.tolist(), slots.tolist(), strict=True):
            assert key_of(token) == (f, s) and slot_of(f, s, bits) == slot


def test_weights_cut_short_after_loading_are_one_error(models, tmp_path):
    import json
    import os
    import shutil

    from classify_cli.util.errors import BundleError

    run = shutil.copytree(models["float32"], tmp_path / "run")
    plain = PlainHead(run)
    os.truncate(run / json.loads((run / "model.json").read_text())["weights"]["file"], 100)
    with pytest.raises(BundleError, match="truncated while in use"):
        plain.score(["goal coach season"])
