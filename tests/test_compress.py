"""classify compress: a small bundle that predict and evaluate read, and its refusals."""

import json
import random
import re
import shutil

import numpy as np
import pytest

from classify_cli.model.bundle import bundle_bytes, load_bundle
from classify_cli.model.inference import Predictor
from classify_cli.train import compress as compressing
from classify_cli.util.display import byte_sizes

from .conftest import TOPICS, write_header_csv
from .test_output_safety import assert_one_clean_error, snapshot


@pytest.fixture(scope="module")
def compressed(trained, tmp_path_factory):
    from typer.testing import CliRunner

    from classify_cli.cli import app

    _, _, run = trained
    out = tmp_path_factory.mktemp("compressed") / "small"
    result = CliRunner().invoke(app, ["compress", "--model", str(run), "--out", str(out), "--max-features", "60"])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout), result.stderr


def test_compress_keeps_the_largest_rows_and_says_what_it_did(trained, compressed):
    _, _, run = trained
    out, summary, said = compressed
    assert summary["features"]["after"] == 60 < summary["features"]["before"]
    assert summary["bytes"]["after"] < summary["bytes"]["before"]
    assert set(summary["validation_accuracy"]) == {"before", "after"}
    before, after = byte_sizes(summary["bytes"]["before"], summary["bytes"]["after"])
    assert said.startswith(f"compressed {before} -> {after}, 60 features; validation accuracy ")
    small, full = load_bundle(out), load_bundle(run)
    assert small.tensors["scores"].dtype == np.int8 and len(small.tensors["scores"]) == 61  # and the shared row
    assert small.meta["head"]["compressed"]["max_features"] == 60
    # every word the small vocabulary knows keeps its id, and has a row
    full_words = dict(zip(*Predictor(full).head.vocab.items(), strict=True))
    small_tokens, small_ids = Predictor(small).head.vocab.items()
    assert 0 < len(small_tokens) < len(full_words)
    assert all(full_words[t] == i for t, i in zip(small_tokens, small_ids.tolist(), strict=True))
    assert set(small_ids.tolist()) <= set(small.tensors["kept_words"].tolist())


@pytest.mark.parametrize(
    ("sizes", "shown"),
    [
        ((1_600_000, 1_290_000), ["1.60 MB", "1.29 MB"]),
        ((1_600_000, 900_000), ["1.60 MB", "0.90 MB"]),
        ((45_000, 1_234), ["45.00 kB", "1.23 kB"]),
        ((999, 12), ["999 B", "12 B"]),
        ((2_500_000_000, 3_000_000), ["2500.00 MB", "3.00 MB"]),
        ((2_000_000, 40), ["2000.00 kB", "0.04 kB"]),
    ],
)
def test_sizes_share_one_unit_and_precision(sizes, shown):
    assert byte_sizes(*sizes) == shown


def test_compressed_model_predicts_and_evaluates(invoke, trained, compressed):
    corpus, data, _ = trained
    out, _, _ = compressed
    result = invoke("predict", "--model", out, "--format", "json", "-k", "2", "--explain", "goal coach season")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["label"] == "Sports" and len(record["top"]) == 2 and record["explain"]
    # the prepared test split (ids remapped through the kept words) and the raw file agree
    on_prepared = json.loads(invoke("evaluate", "--model", out, "--data", data, "--format", "json").stdout)
    on_raw = json.loads(invoke("evaluate", "--model", out, "--data", corpus / "test.csv", "--format", "json").stdout)
    assert on_prepared["accuracy"] == on_raw["accuracy"] > 0.5
    assert on_prepared["loss"] == pytest.approx(on_raw["loss"], rel=1e-5)
    assert on_prepared["oov_rate"] == pytest.approx(on_raw["oov_rate"])


@pytest.mark.parametrize("dtype, tolerance", [("float32", 1e-6), ("float16", 2e-3), ("int8", 3e-2)])
def test_quantized_tables_keep_the_logits(invoke, trained, tmp_path, dtype, tolerance):
    corpus, _, run = trained
    out = tmp_path / dtype
    result = invoke("compress", "--model", run, "--out", out, "--dtype", dtype, "--max-features", "1000000")
    assert result.exit_code == 0, result.output
    texts = [line.split('","', 1)[1] for line in (corpus / "test.csv").read_text().splitlines()]
    full, small = Predictor(load_bundle(run)), Predictor(load_bundle(out))
    np.testing.assert_allclose(small.logits(texts), full.logits(texts), atol=tolerance, rtol=tolerance)


def test_max_size_keeps_as_many_features_as_fit(invoke, trained, tmp_path):
    _, _, run = trained
    full, one = (
        json.loads(invoke("compress", "--model", run, "--out", tmp_path / n, "--max-features", k).stdout)
        for n, k in (("all", "1000000"), ("one", "1"))
    )
    limit = (full["bytes"]["after"] + one["bytes"]["after"]) // 2
    result = invoke("compress", "--model", run, "--out", tmp_path / "fit", "--max-size", str(limit))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    kept = summary["features"]["after"]
    assert summary["max_bytes"] == limit and summary["bytes"]["after"] <= limit
    assert 0 < kept < full["features"]["after"]
    # the most important features first, as --max-features keeps them: nothing more fits here
    prefix = json.loads(
        invoke("compress", "--model", run, "--out", tmp_path / "prefix", "--max-features", str(kept + 1)).stdout
    )
    assert prefix["bytes"]["after"] > limit
    assert load_bundle(tmp_path / "fit").meta["head"]["compressed"]["max_features"] == kept


def test_the_size_a_too_small_limit_names_is_enough(invoke, trained, tmp_path):
    _, _, run = trained
    refused = invoke("compress", "--model", run, "--out", tmp_path / "small", "--max-size", "1K")
    assert refused.exit_code == 2 and not (tmp_path / "small").exists()
    named = int(re.search(r"this model takes ([\d,]+) bytes", refused.stderr)[1].replace(",", ""))
    result = invoke("compress", "--model", run, "--out", tmp_path / "small", "--max-size", str(named))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["features"]["after"] == 1


def test_max_size_fills_the_room_a_larger_word_table_would_take_with_buckets(invoke, tmp_path):
    rng = random.Random(0)
    fillers = [f"w{i:04d}" for i in range(1500)]  # enough words to outgrow the smallest word table
    rows = [(t, " ".join(TOPICS[t].split()[:2] + rng.sample(fillers, 6))) for t in TOPICS for _ in range(100)]
    config = tmp_path / "small.toml"
    config.write_text('[model]\nembed_dim = 16\nbuckets = 5000\n\n[train]\nepochs = 1\ndevice = "cpu"\n')
    data, run = tmp_path / "data", tmp_path / "run"
    corpus = write_header_csv(tmp_path / "train.csv", rows)
    assert invoke("prepare", "--from", corpus, "--out", data, "--config", config).exit_code == 0
    assert invoke("train", "--data", data, "--out", run, "--config", config).exit_code == 0
    bundle = load_bundle(run)
    order, n_words = compressing.feature_order(bundle), bundle.meta["head"]["kept_words"]

    def smaller(n: int):
        return compressing.compressed(bundle, order[:n], "int8", None, "test")

    # the most features before the next one would double the word table
    lo, hi = 1, len(order)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if len(smaller(mid)[0]["vocab.keys"]) == 1024 else (lo, mid - 1)
    limit = bundle_bytes(*smaller(lo)) + 1000
    assert bundle_bytes(*smaller(lo + 1)) > limit  # that word's table would not fit
    result = invoke("compress", "--model", run, "--out", tmp_path / "fit", "--max-size", str(limit))
    assert result.exit_code == 0, result.output
    assert limit - 100 < json.loads(result.stdout)["bytes"]["after"] <= limit  # short of it by a row or so
    fit = load_bundle(tmp_path / "fit").tensors
    words = order[:lo][order[:lo] < n_words]
    assert sorted(fit["kept_words"].tolist()) == sorted(words.tolist())  # the same words, and more buckets
    assert len(fit["ngram_buckets"]) > (order[:lo] >= n_words).sum()


def _tamper(run):
    meta = json.loads((run / "model.json").read_text())
    weights = run / meta["weights"]["file"]
    weights.write_bytes(weights.read_bytes()[:-10])


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--model", "{missing}"], 2, "no model at"),
        (["--model", "{tampered}"], 2, "checksum mismatch"),
        (["--model", "{small}"], 2, "already compressed"),
        (["--max-features", "0"], 2, "--max-features must be at least 1"),
        (["--dtype", "int4"], 2, "'int4' is not one of"),
        (["--out", "{user_dir}"], 2, "not a compressed model alone"),
        (["--out", "{run}"], 2, "--out must differ from --model"),
        (["--max-size", "1K"], 2, "--max-size 1,000 bytes: this model takes"),
        (["--max-size", "a lot"], 2, "--max-size 'a lot': give bytes"),
        (["--max-size", "1M", "--max-features", "10"], 2, "give --max-features or --max-size, not both"),
    ],
    ids=[
        "missing",
        "tampered",
        "already-compressed",
        "zero-features",
        "unknown-dtype",
        "user-files",
        "in-place",
        "too-small",
        "unreadable-size",
        "both-limits",
    ],
)
def test_compress_refuses_bad_input_and_writes_nothing(invoke, trained, compressed, tmp_path, args, code, message):
    _, _, run = trained
    tampered = tmp_path / "tampered"
    shutil.copytree(run, tampered)
    _tamper(tampered)
    user_dir = tmp_path / "mine"
    user_dir.mkdir()
    (user_dir / "notes.txt").write_text("mine\n")
    places = {
        "missing": tmp_path / "nope",
        "tampered": tampered,
        "small": compressed[0],
        "user_dir": user_dir,
        "run": run,
    }
    args = [a.format(**places) for a in args]
    options = dict(zip(args[::2], args[1::2], strict=True))
    options.setdefault("--model", str(run))
    options.setdefault("--out", str(tmp_path / "out"))
    before = {str(p): snapshot(p) for p in (run, user_dir, compressed[0])}
    result = invoke("compress", *[x for kv in options.items() for x in kv])
    assert_one_clean_error(result, code, message)
    assert not (tmp_path / "out").exists()
    assert {str(p): snapshot(p) for p in (run, user_dir, compressed[0])} == before


def test_a_compressed_model_cannot_be_resumed(invoke, compressed):
    out, _, _ = compressed
    result = invoke("train", "--resume", out)
    assert_one_clean_error(result, 2, "compressed model")


def test_compress_replaces_only_its_own_output(invoke, trained, tmp_path):
    _, _, run = trained
    other = tmp_path / "other-run"
    shutil.copytree(run, other)  # a full run directory: metrics, model, maybe a checkpoint
    before = snapshot(other)
    result = invoke("compress", "--model", run, "--out", other)
    assert_one_clean_error(result, 2, "not a compressed model alone")
    assert snapshot(other) == before
    out = tmp_path / "small"
    for _ in range(2):  # its own output it replaces
        assert invoke("compress", "--model", run, "--out", out).exit_code == 0
    (out / "curves.png").write_bytes(b"\x89PNG drawn since")
    assert_one_clean_error(invoke("compress", "--model", run, "--out", out), 2, "not a compressed model alone")


def test_a_run_trained_over_a_compressed_model_resumes(trained, compressed, tmp_path):
    from classify_cli.train.run import train
    from classify_cli.util.config import load_config
    from classify_cli.util.errors import Interrupted

    _, data, _ = trained
    out = tmp_path / "again"
    shutil.copytree(compressed[0], out)
    cfg = load_config(None, {("train", "device"): "cpu", ("model", "buckets"): 5000})
    steps = iter(range(10**6))
    with pytest.raises(Interrupted):
        train(data, out, cfg, log=lambda m: None, should_stop=lambda: next(steps) >= 2)
    summary = train(None, out, None, resume=True, log=lambda m: None)
    assert summary["epochs_run"] >= 1 and "compressed" not in load_bundle(out).meta["head"]
