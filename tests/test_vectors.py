"""Pretrained word vectors: reading every format, training from them, and refusing bad files."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from classify_cli.text.token_table import TokenTable
from classify_cli.text.vectors import read_vectors
from classify_cli.train.net import TextClassifier
from classify_cli.util.errors import InputError

from .conftest import TOPICS, write_ag_dir

DIM = 8
# words no training text holds, each meaning one topic: only their vectors can tell
SYNONYMS = {
    "World": "diplomat ambassador senate",
    "Sports": "quarterback referee athlete",
    "Business": "dividend shareholder ipo",
    "Sci/Tech": "processor robotics laptop",
}


def topic_vectors(seed: int = 0) -> list[tuple[str, list[float]]]:
    """A vector per topic word and synonym, close to its topic's direction; filler words near zero."""
    rng = random.Random(seed)
    out = []
    for k, topic in enumerate(TOPICS):
        for word in TOPICS[topic].split() + SYNONYMS[topic].split():
            out.append((word, [(1.0 if d == k else 0.0) + rng.gauss(0, 0.1) for d in range(DIM)]))
    for word in "the a of in on to and for with after new says report today".split():
        out.append((word, [rng.gauss(0, 0.1) for _ in range(DIM)]))
    return out


def write_glove(path: Path, entries, header: bool = False) -> Path:
    lines = [f"{len(entries)} {DIM}\n"] if header else []
    lines += [w + " " + " ".join(f"{x:.6f}" for x in v) + "\n" for w, v in entries]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def write_word2vec_binary(path: Path, entries) -> Path:
    with open(path, "wb") as fh:
        fh.write(f"{len(entries)} {DIM}\n".encode())
        for word, vector in entries:
            fh.write(word.encode() + b" " + struct.pack(f"<{DIM}f", *vector) + b"\n")
    return path


def vocabulary(words: list[str]) -> TokenTable:
    return TokenTable.build([w.encode() for w in words], range(len(words)), 0)


@pytest.fixture
def corpus_and_config(tmp_path):
    corpus = write_ag_dir(tmp_path / "corpus", n_train=60, n_test=10)
    config = tmp_path / "vec.toml"
    config.write_text(
        "[prepare]\nvalidation_fraction = 0.2\n\n[model]\nbuckets = 5000\n\n"
        '[train]\nepochs = 4\nlr = 2.0\nbatch_size = 16\ndevice = "cpu"\n'
    )
    return corpus, config


def test_every_format_gives_the_same_vectors(tmp_path):
    entries = topic_vectors()
    words = ["<unk>", "minister", "goal", "shares", "chip"]
    glove = write_glove(tmp_path / "v.txt", entries)
    vec = write_glove(tmp_path / "v.vec", entries, header=True)
    gz = tmp_path / "v.txt.gz"
    gz.write_bytes(gzip.compress(glove.read_bytes()))
    binary = write_word2vec_binary(tmp_path / "v.bin", entries)
    expected = {w: np.float32(v) for w, v in entries}
    results = [read_vectors(p, vocabulary(words), len(words), "all") for p in (glove, vec, gz, binary)]
    for got in results:
        assert got.dim == DIM
        assert got.matched.tolist() == [False, True, True, True, True]
        for i, word in enumerate(words[1:], start=1):
            np.testing.assert_allclose(got.rows[i], expected[word], atol=1e-6)
        # every other word of the file is kept (vectors_vocab "all"), in file order
        assert got.extra_tokens == [w.encode() for w, _ in entries if w not in words]
        assert got.info["words"] == len(entries)
    assert results[2].info["sha256"] == hashlib.sha256(gz.read_bytes()).hexdigest()


def test_words_meet_tokens_through_the_tokenizer(tmp_path):
    """basic_english lower-cases: "Paris" stands for "paris", the file's first spelling wins, and
    a word the tokenizer would split ("u.s.") can never occur, so it is not kept."""
    path = write_glove(
        tmp_path / "v.txt",
        [
            ("Paris", [1.0] * DIM),
            ("paris", [2.0] * DIM),
            ("u.s.", [3.0] * DIM),
            ("Oslo", [4.0] * DIM),
            ("oslo", [5.0] * DIM),
        ],
    )
    words = ["<unk>", "paris"]
    got = read_vectors(path, vocabulary(words), len(words), "all")
    assert got.rows[1].tolist() == [1.0] * DIM
    assert got.extra_tokens == [b"oslo"]
    assert got.extra_rows[0].tolist() == [4.0] * DIM


def test_vectors_vocab_counts_the_files_first_words(tmp_path):
    entries = topic_vectors()
    path = write_glove(tmp_path / "v.txt", entries)
    words = ["<unk>", entries[3][0]]
    got = read_vectors(path, vocabulary(words), len(words), 5)
    assert got.extra_tokens == [w.encode() for w, _ in entries[:5] if w != entries[3][0]]
    assert read_vectors(path, vocabulary(words), len(words), "train").extra_tokens == []


def test_vectors_reach_words_training_never_saw(invoke, tmp_path, corpus_and_config):
    corpus, config = corpus_and_config
    vectors = write_glove(tmp_path / "topics.txt", topic_vectors())
    data = tmp_path / "data"
    assert invoke("prepare", "--from", corpus, "--out", data, "--config", config).exit_code == 0
    texts = [f"the {w} says" for topic in TOPICS for w in SYNONYMS[topic].split()]
    truth = [topic for topic in TOPICS for _ in SYNONYMS[topic].split()]
    accuracy = {}
    for keep in ("all", "train"):
        run = tmp_path / f"run-{keep}"
        result = invoke(
            "train", "--data", data, "--out", run, "--config", config, "--vectors", vectors, "--vectors-vocab", keep
        )
        assert result.exit_code == 0, result.output
        got = invoke("predict", "--model", run, "--format", "jsonl", *texts)
        labels = [json.loads(line)["label"] for line in got.stdout.splitlines()]
        accuracy[keep] = np.mean([a == b for a, b in zip(labels, truth, strict=True)])
    # synonyms are <unk> to a model that keeps only the train words' vectors; the others know them
    assert accuracy["all"] >= 0.9
    assert accuracy["train"] <= 0.5
    meta = json.loads((tmp_path / "run-all" / "model.json").read_text())
    assert meta["vectors"] == {
        "file": "topics.txt",
        "sha256": hashlib.sha256(vectors.read_bytes()).hexdigest(),
        "dim": DIM,
        "words": len(topic_vectors()),
        "matched": sum(len(w.split()) for w in TOPICS.values()) + 14,
        "kept": sum(len(w.split()) for w in SYNONYMS.values()),
        "vocab": "all",
    }
    assert meta["model_effective"]["embed_dim"] > DIM  # learned columns after the vectors'
    # prepared data holds token ids of the train vocabulary only: evaluate says what that leaves out
    report = json.loads(invoke("evaluate", "--model", tmp_path / "run-all", "--data", data, "--format", "json").stdout)
    assert "the 12 words the model knows from vectors alone go unused" in report["data"]
    shown = invoke("info", tmp_path / "run-all")
    assert (
        "vectors:" in shown.stdout
        and "file topics.txt, sha256" in shown.stdout
        and "kept 12, vocab all" in shown.stdout
    )


def test_a_compressed_vectors_model_still_predicts(invoke, tmp_path, corpus_and_config):
    corpus, config = corpus_and_config
    vectors = write_glove(tmp_path / "topics.txt", topic_vectors())
    data, run, small = tmp_path / "data", tmp_path / "run", tmp_path / "small"
    assert invoke("prepare", "--from", corpus, "--out", data, "--config", config).exit_code == 0
    assert invoke("train", "--data", data, "--out", run, "--config", config, "--vectors", vectors).exit_code == 0
    result = invoke("compress", "--model", run, "--out", small, "--max-features", "30")
    assert result.exit_code == 0, result.output
    got = invoke("predict", "--model", small, "--format", "jsonl", "the quarterback referee athlete goal")
    assert json.loads(got.stdout)["label"] == "Sports"


BAD_FILES = {
    "ragged": (b"goal 0.1 0.2 0.3\nmatch 0.1 0.2\n", "2: 2 values after the word; the file's vectors have 3"),
    "non-numeric": (b"goal 0.1 0.2 0.3\nmatch 0.1 zero 0.3\n", "2: 'zero' is not a number"),
    "nan": (b"goal 0.1 0.2 0.3\nmatch 0.1 nan 0.3\n", "2: the vector holds NaN or infinity"),
    "inf": (b"goal 0.1 inf 0.3\n", "1: the vector holds NaN or infinity"),
    "duplicate": (b"goal 0.1 0.2 0.3\nmatch 1 2 3\ngoal 0.1 0.2 0.3\n", "a word is given twice (vectors 1 and 3)"),
    "binary": (bytes(range(256)) * 4, "not a vectors text file (it holds binary data"),
    "empty": (b"", "the vectors file is empty"),
    "truncated binary": (
        b"2 3\ngoal " + struct.pack("<3f", 1, 2, 3),
        "the header promises 2 vectors; the file ends after 1",
    ),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_bad_vectors_file_is_refused_and_nothing_is_written(invoke, tmp_path, trained, case):
    content, message = BAD_FILES[case]
    _, data, _ = trained
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    run = tmp_path / "run"
    result = invoke("train", "--data", data, "--out", run, "--vectors", path, "--set", "train.device=cpu")
    assert result.exit_code == 2, result.output
    assert result.stderr.count("error:") == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not run.exists()


def test_learned_columns_sit_beside_the_vectors(invoke, tmp_path, trained):
    _, data, _ = trained
    vectors = write_glove(tmp_path / "topics.txt", topic_vectors())
    result = invoke(
        "train", "--data", data, "--out", tmp_path / "run16", "--vectors", vectors, "--set", "model.embed_dim=16"
    )
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "run16" / "model.json").read_text())
    assert meta["model_effective"]["embed_dim"] == DIM + 16 and meta["vectors"]["dim"] == DIM


def test_vectors_fill_the_first_columns_and_the_learned_ones_start_at_zero():
    model = TextClassifier(num_features=6, embed_dim=DIM + 4, num_classes=2)
    model.init_weights(4, torch.Generator().manual_seed(0), torch.zeros(2))
    rows = np.arange(4 * DIM, dtype=np.float32).reshape(4, DIM)
    known = np.array([False, True, False, True])
    extra = np.full((1, DIM), 7.0, dtype=np.float32)
    before = model.embedding.weight[2, :DIM].clone()
    model.start_from_vectors(rows, known, extra, 0.5)
    weight = model.embedding.weight.detach()
    assert torch.equal(weight[[1, 3], :DIM], torch.from_numpy(rows[[1, 3]] * 0.5))
    assert torch.equal(weight[4, :DIM], torch.full((DIM,), 3.5))
    assert torch.equal(weight[2, :DIM], before) and before.abs().sum() > 0  # no vector: as without vectors
    assert not weight[:, DIM:].any()


def test_a_missing_file_or_an_unknown_vocab_choice_is_refused(invoke, tmp_path, trained):
    _, data, _ = trained
    vectors = write_glove(tmp_path / "topics.txt", topic_vectors())
    missing = invoke("train", "--data", data, "--out", tmp_path / "run", "--vectors", tmp_path / "nope.txt")
    assert missing.exit_code == 2 and "vectors file not found" in missing.stderr
    bad_keep = invoke(
        "train", "--data", data, "--out", tmp_path / "run", "--vectors", vectors, "--vectors-vocab", "most"
    )
    assert bad_keep.exit_code == 2 and "vectors_vocab" in bad_keep.stderr
    assert not (tmp_path / "run").exists()


def test_many_blocks_of_lines_read_in_order(tmp_path, monkeypatch):
    """Blocks of lines parsed at once, split anywhere in a line, give every vector in file order."""
    import classify_cli.text.vectors as vectors_module

    monkeypatch.setattr(vectors_module, "BLOCK_BYTES", 1000)
    rng = np.random.default_rng(0)
    values = rng.normal(size=(500, DIM)).astype(np.float32)
    words = [f"w{i}" for i in range(500)]
    path = tmp_path / "many.txt"
    path.write_text(
        "".join(f"{w} " + " ".join(f"{x:.6f}" for x in v) + "\n" for w, v in zip(words, values, strict=True))
    )
    got = read_vectors(path, vocabulary(["<unk>", *words[:10]]), 11, "all")
    np.testing.assert_allclose(got.rows[1:], values[:10], atol=1e-5)
    np.testing.assert_allclose(got.extra_rows, values[10:], atol=1e-5)
    assert got.extra_tokens == [w.encode() for w in words[10:]]


def test_a_file_of_blank_lines_holds_no_vectors(tmp_path):
    path = tmp_path / "blank.txt"
    path.write_text("\n\n")
    with pytest.raises(InputError, match="holds no vectors"):
        read_vectors(path, vocabulary(["<unk>"]), 1)


def test_a_vectors_run_resumes_exactly_and_only_with_the_same_file(invoke, tmp_path, corpus_and_config):
    from classify_cli.train.run import train
    from classify_cli.util.config import load_config
    from classify_cli.util.errors import Interrupted

    from .conftest import assert_same_model

    corpus, config = corpus_and_config
    vectors = write_glove(tmp_path / "topics.txt", topic_vectors())
    data = tmp_path / "data"
    assert invoke("prepare", "--from", corpus, "--out", data, "--config", config).exit_code == 0
    cfg = load_config(config, {("model", "vectors"): str(vectors)})
    train(data, tmp_path / "full", cfg, log=lambda m: None)
    for cut in ("cut", "changed"):
        calls = iter(range(10**6))
        with pytest.raises(Interrupted, match="--resume"):
            train(data, tmp_path / cut, cfg, log=lambda m: None, should_stop=lambda c=calls: next(c) >= 7)
    assert invoke("train", "--resume", tmp_path / "cut").exit_code == 0
    assert_same_model(tmp_path / "full", tmp_path / "cut")
    write_glove(vectors, topic_vectors(seed=1))  # other vectors under the same name
    result = invoke("train", "--resume", tmp_path / "changed")
    assert result.exit_code == 2
    assert "the vectors file" in result.stderr and "changed since the checkpoint was saved" in result.stderr
    assert (tmp_path / "changed" / "checkpoint" / "state.json").exists()  # still there to resume from
    # a checkpoint whose table another version built (vectors' columns alone, before learned ones)
    write_glove(vectors, topic_vectors())
    state_file = tmp_path / "changed" / "checkpoint" / "state.json"
    state = json.loads(state_file.read_text())
    state["config"]["model"]["embed_dim"] = 32
    state_file.write_text(json.dumps(state))
    result = invoke("train", "--resume", tmp_path / "changed")
    assert result.exit_code == 2 and result.stderr.count("error:") == 1, result.stderr
    assert "the checkpoint's word table is" in result.stderr and "cannot resume" in result.stderr
    assert "Traceback" not in result.stderr and state_file.exists()
