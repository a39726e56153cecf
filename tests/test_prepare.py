import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from classify_cli.data.prepare import stratified_split
from classify_cli.data.prepared import load_prepared

from .conftest import make_rows, write_ag_dir, write_header_csv, write_jsonl


def test_prepare_ag_directory(invoke, tmp_path, tiny_config):
    corpus = write_ag_dir(tmp_path / "corpus", n_train=40, n_test=10)
    result = invoke("prepare", "--from", corpus, "--out", tmp_path / "data", "--config", tiny_config)
    assert result.exit_code == 0, result.output
    assert "train" in result.stdout and "World" in result.stdout
    data = load_prepared(tmp_path / "data")
    assert data.labels == ["World", "Sports", "Business", "Sci/Tech"]  # classes.txt order
    assert len(data.splits["test"]) == 40  # the source's own test split, untouched
    assert len(data.splits["train"]) + len(data.splits["validation"]) == 160
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())
    assert manifest["carved"] == ["validation"]
    assert manifest["splits"]["validation"]["per_class"] == {"World": 8, "Sports": 8, "Business": 8, "Sci/Tech": 8}
    assert set(manifest["files"]) == {
        "vocab.json",
        "train.safetensors",
        "validation.safetensors",
        "test.safetensors",
        "fingerprints.safetensors",
    }
    assert manifest["config"]["prepare"]["validation_fraction"] == 0.2


def test_vocabulary_comes_from_train_only(invoke, tmp_path, tiny_config):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rows = make_rows(10)
    write_header_csv(corpus / "train.csv", rows)
    write_header_csv(corpus / "validation.csv", [("World", "zanzibar valonly minister")] + rows[:4])
    write_header_csv(corpus / "test.csv", [("Sports", "quokka testonly goal")] + rows[:4])
    result = invoke("prepare", "--from", corpus, "--out", tmp_path / "data", "--config", tiny_config)
    assert result.exit_code == 0, result.output
    data = load_prepared(tmp_path / "data")
    for word in ("zanzibar", "valonly", "quokka", "testonly"):
        assert word not in data.vocab
    assert "minister" in data.vocab
    first_test = data.splits["test"].ids[data.splits["test"].offsets[0] : data.splits["test"].offsets[1]]
    assert list(first_test[:2]) == [data.vocab.unk_index] * 2


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
def test_single_file_sources_are_carved_into_three_splits(invoke, tmp_path, tiny_config, kind):
    rows = make_rows(25)
    path = tmp_path / f"corpus.{kind}"
    if kind == "csv":
        write_header_csv(path, rows)
    elif kind == "jsonl":
        write_jsonl(path, rows)
    else:
        pa = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"text": [t for _, t in rows], "label": [lab for lab, _ in rows]}), path)
    result = invoke("prepare", "--from", path, "--out", tmp_path / "data", "--config", tiny_config)
    assert result.exit_code == 0, result.output
    data = load_prepared(tmp_path / "data")
    sizes = {s: len(v) for s, v in data.splits.items()}
    assert sum(sizes.values()) == 100 and all(sizes.values())
    assert data.labels == sorted(data.labels)  # string labels: alphabetical


def test_integer_labels_keep_numeric_order(invoke, tmp_path, tiny_config):
    rows = [(str(i % 3 + 1) if i % 3 != 2 else "10", f"text number {i} word{i % 3}") for i in range(60)]
    write_jsonl(tmp_path / "c.jsonl", rows)
    result = invoke("prepare", "--from", tmp_path / "c.jsonl", "--out", tmp_path / "data", "--config", tiny_config)
    assert result.exit_code == 0, result.output
    assert load_prepared(tmp_path / "data").labels == ["1", "2", "10"]


def test_custom_columns_via_set(invoke, tmp_path, tiny_config):
    path = tmp_path / "c.csv"
    with open(path, "w") as fh:
        fh.write("headline,body,topic\n")
        for label, text in make_rows(10):
            fh.write(f"{text.split()[0]},{text},{label}\n")
    result = invoke(
        "prepare",
        "--from",
        path,
        "--out",
        tmp_path / "data",
        "--config",
        tiny_config,
        "--set",
        'prepare.text_fields=["headline", "body"]',
        "--set",
        "prepare.label_field=topic",
    )
    assert result.exit_code == 0, result.output


def test_stratified_split_is_seeded_and_per_class():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    kept, carved = stratified_split(labels, 0.1, seed=3)
    again = stratified_split(labels, 0.1, seed=3)
    assert np.array_equal(carved, again[1])
    assert np.bincount(labels[carved]).tolist() == [5, 3, 2]
    assert len(np.intersect1d(kept, carved)) == 0 and len(kept) + len(carved) == 100


def test_unreachable_hub_fails_fast_with_a_hint(monkeypatch):
    # a closed local port: the connection is refused at once, as on a machine with no network
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
    started = time.monotonic()
    # a fresh process, as a user runs it: the Hub library reads its offline switch when first
    # imported, which another test in this process may have done already
    result = subprocess.run(
        [sys.executable, "-m", "classify_cli", "prepare", "--out", "data/x"], capture_output=True, text=True
    )
    assert time.monotonic() - started < 20
    assert result.returncode == 3, result.stderr
    assert "Hugging Face Hub" in result.stderr and "--from data/ag_news_sample" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_prepare_replaces_existing_output_atomically(invoke, tmp_path, tiny_config):
    corpus = write_ag_dir(tmp_path / "corpus")
    out = tmp_path / "data"
    assert invoke("prepare", "--from", corpus, "--out", out, "--config", tiny_config).exit_code == 0
    assert invoke("prepare", "--from", corpus, "--out", out, "--config", tiny_config).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")) == []
    load_prepared(out)


def test_hub_dataset_path_with_class_names(invoke, monkeypatch, tiny_config):
    """The Hub path end to end, with datasets.load_dataset answering from memory (no network here)."""
    datasets = pytest.importorskip("datasets")
    from classify_cli.inputs import sources

    rows = make_rows(15)
    names = ["World", "Sports", "Business", "Sci/Tech"]
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)})

    def split(part):
        return datasets.Dataset.from_dict(
            {"text": [t for _, t in part], "label": [names.index(lab) for lab, _ in part]}, features=features
        )

    asked = []

    def fake_load_dataset(name):
        asked.append(name)
        return datasets.DatasetDict({"train": split(rows[:50]), "test": split(rows[50:])})

    monkeypatch.setattr(sources, "_hub_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.setattr(sources, "HUB_BATCH_ROWS", 7)  # batches that cut the splits unevenly

    def no_rows(self):
        raise AssertionError("read row by row: Arrow batches expected")

    monkeypatch.setattr(datasets.Dataset, "__iter__", no_rows)
    result = invoke("prepare", "--out", "data/hub", "--config", tiny_config)
    assert result.exit_code == 0, result.output
    assert asked == ["fancyzhx/ag_news"]
    data = load_prepared("data/hub")
    assert data.labels == names  # ClassLabel order, not alphabetical
    assert len(data.splits["test"]) == 10
    assert data.manifest["source"] == "hf://fancyzhx/ag_news"
    assert data.manifest["splits"]["test"]["per_class"] == {n: [lab for lab, _ in rows[50:]].count(n) for n in names}


SAMPLE = Path(__file__).parents[1] / "data" / "ag_news_sample"


def test_the_shipped_sample_is_what_its_readme_says():
    import hashlib
    import re

    readme = (SAMPLE.parent / "README.md").read_text()
    listed = re.findall(r"\| (\S+) \| (\d+) \| ([0-9a-f]{64}) \|", readme)
    assert sorted(name for name, _, _ in listed) == sorted(p.name for p in SAMPLE.iterdir())
    for name, size, digest in listed:
        data = (SAMPLE / name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (int(size), digest), name


def _demo_commands() -> list[list[str]]:
    """The `classify` commands of `make demo`'s recipe, with the shipped sample as SOURCE."""
    recipe = (SAMPLE.parents[1] / "Makefile").read_text().split("\ndemo:")[1].split("\n\n")[0]
    lines = [line.strip() for line in recipe.splitlines()[1:] if line.startswith("\t")]
    return [shlex.split(line.replace("$(SOURCE)", str(SAMPLE)))[1:] for line in lines]


def test_the_demo_runs_offline_on_the_shipped_sample_into_the_default_paths(invoke):
    """`make demo`'s own commands, with no network; then the commands find its model with no options."""
    commands = _demo_commands()
    assert [c[0] for c in commands] == ["prepare", "train", "evaluate", "predict"]
    for command in commands:
        result = invoke(*command)
        assert result.exit_code == 0, (command, result.output)
    assert invoke("info").exit_code == 0
    report = invoke("evaluate", "--format", "json")
    assert report.exit_code == 0 and json.loads(report.stdout)["accuracy"] > 0.7, report.output
    predicted = invoke("predict", "--format", "json", "Late goal sends United into the final")
    assert json.loads(predicted.stdout)["label"] == "Sports"


def test_the_sample_hint_counts_the_sample_rows():
    from classify_cli.inputs.sources import SAMPLE_HINT

    rows = sum(len((SAMPLE / f"{split}.csv").read_text().splitlines()) for split in ("train", "test"))
    assert f"{rows:,}-row" in SAMPLE_HINT and "--from data/ag_news_sample" in SAMPLE_HINT


def test_train_without_data_names_the_shipped_sample(invoke):
    result = invoke("train")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert "classify prepare --from SOURCE --out data/ag_news" in result.stderr
    assert "--from data/ag_news_sample" in result.stderr


@pytest.mark.parametrize(
    ("source", "is_path"),
    [
        ("./x", True),
        ("a/b/c", True),
        ("x.csv", True),
        ("news.cvs", True),
        ("~/x", True),
        ("/abs/x", True),
        ("..", True),
        ("owner/", True),
        ("dir\\x", True),
        ("owner/name.v2", True),
        ("fancyzhx/ag_news", False),
        ("ag_news", False),
        ("teknium/OpenHermes-2.5", False),
    ],
)
def test_paths_and_hub_names_are_told_apart(source, is_path):
    from classify_cli.inputs.sources import looks_like_path

    assert looks_like_path(source) is is_path


@pytest.mark.parametrize("source", ["news.cvs", "a/b/c", "~/nowhere/x", "./x"])
def test_a_missing_path_is_no_such_file_not_the_hub(invoke, monkeypatch, source):
    from classify_cli.inputs import sources

    monkeypatch.setattr(sources, "open_hub", lambda name, cfg: pytest.fail(f"{name} sent to the Hub"))
    result = invoke("prepare", "--from", source, "--out", "data/x")
    assert result.exit_code == 2 and result.stderr == f"error: no such file or directory: {source}\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("text,label\ngoal match,A\nshares bank, A \n", "labels 'A' and ' A ' differ only by surrounding whitespace"),
        ("text,label\ngoal match,B \nshares bank,B\n", "labels 'B ' and 'B' differ only by surrounding whitespace"),
        ("text,text,label\ngoal,match,A\nshares,bank,B\n", "the header names column(s) ['text'] more than once"),
        ("text,label,label\ngoal,A,A\nshares,B,B\n", "the header names column(s) ['label'] more than once"),
    ],
    ids=["padded-later", "padded-first", "text-twice", "label-twice"],
)
def test_prepare_refuses_ambiguous_labels_and_columns(invoke, tmp_path, content, message):
    corpus = tmp_path / "corpus.csv"
    corpus.write_text(content * 10)
    result = invoke("prepare", "--from", corpus, "--out", tmp_path / "data")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.output
    assert not (tmp_path / "data").exists()


def test_prepare_accepts_repeated_columns_it_does_not_read(invoke, tmp_path):
    corpus = tmp_path / "corpus.csv"
    corpus.write_text("text,label,x,x\n" + "goal match,A,1,2\nshares bank,B,3,4\n" * 10)
    assert invoke("prepare", "--from", corpus, "--out", tmp_path / "data").exit_code == 0


def test_fingerprints_tell_rows_apart_exactly():
    from classify_cli.util.ragged import fingerprints, offsets_from_lengths

    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 6, 20_000)
    values = rng.integers(0, 4, lengths.sum()).astype(np.int32)  # small alphabet: many equal rows
    offsets = offsets_from_lengths(lengths)
    prints = fingerprints(values, offsets)
    rows = [tuple(values[offsets[i] : offsets[i + 1]]) for i in range(len(lengths))]
    assert len(set(prints.tolist())) == len(set(rows))  # equal exactly when the rows are
    first = {}
    for row, fp in zip(rows, prints.tolist(), strict=True):
        assert first.setdefault(row, fp) == fp


@pytest.mark.parametrize("drop", [False, True])
def test_prepare_reports_or_drops_documents_train_also_holds(invoke, tmp_path, drop):
    rows = make_rows(30, seed=1)
    path = write_header_csv(tmp_path / "corpus.csv", rows + rows[:40])  # 40 documents twice
    args = ["--set", "prepare.drop_overlap=true"] if drop else []
    result = invoke("prepare", "--from", path, "--out", tmp_path / "data", *args)
    assert result.exit_code == 0, result.output
    overlap = json.loads((tmp_path / "data" / "manifest.json").read_text())["train_overlap"]
    assert overlap["dropped"] is drop and overlap["validation"] + overlap["test"] > 0
    said = "dropped" if drop else "warning:"
    assert f"{said} {overlap['validation']:,} validation and {overlap['test']:,} test documents" in result.stderr
    if drop:  # what is left of validation and test shares no document with train
        data = load_prepared(tmp_path / "data")
        from classify_cli.util.ragged import fingerprints

        train = fingerprints(data.splits["train"].ids, data.splits["train"].offsets)
        for name in ("validation", "test"):
            split = data.splits[name]
            assert not np.isin(fingerprints(split.ids, split.offsets), train).any()


def test_evaluate_warns_when_given_training_rows(invoke, trained, tmp_path):
    corpus, data, run = trained
    train_file = next(p for p in corpus.iterdir() if p.name.startswith("train"))
    result = invoke("evaluate", "--model", run, "--data", train_file, "--format", "json")
    assert result.exit_code == 0, result.output
    overlap = json.loads(result.stdout)["train_overlap"]
    assert overlap["rows"] > 0 and f"warning: {overlap['rows']:,} of" in result.stderr
    fresh = invoke("evaluate", "--model", run, "--format", "json")  # its own test split: no overlap here
    assert json.loads(fresh.stdout)["train_overlap"]["rows"] == 0


def test_prepare_keeps_the_train_fingerprints_evaluate_checks_against(trained):
    from classify_cli.data.prepared import train_fingerprints
    from classify_cli.util.ragged import fingerprints

    _, data, _ = trained
    train = load_prepared(data, ("train",)).splits["train"]
    assert (data / "fingerprints.safetensors").is_file()
    assert np.array_equal(train_fingerprints(data), fingerprints(train.ids, train.offsets))


def test_prepare_streams_ids_through_disk_a_block_at_a_time(invoke, tmp_path, tiny_config, monkeypatch):
    """Blocks of a few ids (every document split across reads and flushes) give the same
    prepared data as one block, and no work file is left beside --out."""
    import classify_cli.data.spill as spill

    source = write_ag_dir(tmp_path / "ag", n_train=60, n_test=15)
    assert invoke("prepare", "--from", source, "--out", tmp_path / "whole", "--config", tiny_config).exit_code == 0
    monkeypatch.setattr(spill, "READ_TOKENS", 7)
    monkeypatch.setattr(spill, "FLUSH_TOKENS", 5)
    assert invoke("prepare", "--from", source, "--out", tmp_path / "blocks", "--config", tiny_config).exit_code == 0
    whole, blocks = load_prepared(tmp_path / "whole"), load_prepared(tmp_path / "blocks")
    assert whole.vocab.itos == blocks.vocab.itos
    for name, split in whole.splits.items():
        for field in ("ids", "offsets", "labels"):
            assert np.array_equal(getattr(split, field), getattr(blocks.splits[name], field)), (name, field)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ag", "blocks", "tiny.toml", "whole"]


def test_a_failed_prepare_leaves_no_work_files(invoke, tmp_path, tiny_config):
    source = tmp_path / "corpus.csv"
    write_header_csv(source, [*make_rows(10), ("", "text with an empty label")])
    result = invoke("prepare", "--from", source, "--out", tmp_path / "out" / "data", "--config", tiny_config)
    assert result.exit_code == 2 and "empty label" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.csv", "tiny.toml"]


def test_spilled_rows_are_the_rows_in_memory(tmp_path, monkeypatch):
    import classify_cli.data.spill as spill
    from classify_cli.util.ragged import select_rows

    monkeypatch.setattr(spill, "READ_TOKENS", 4)
    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 50, rng.integers(0, 9)).tolist() for _ in range(40)]
    sink = spill.TokenSink(tmp_path / "ids")
    for doc in docs:
        sink.add(doc)
    spilled = sink.finish()
    values = np.array([t for doc in docs for t in doc], dtype=np.int32)
    remap = rng.permutation(50).astype(np.int32)
    for rows in (np.arange(40), np.array([0, 3, 4, 17, 39]), np.zeros(0, np.int64)):
        blocks = list(spilled.rows(rows, remap))
        got = np.concatenate([ids for ids, _ in blocks]) if blocks else np.zeros(0, np.int32)
        expected, offsets = select_rows(values, spilled.offsets, rows)
        assert np.array_equal(got, remap[expected])
        assert sum(len(o) - 1 for _, o in blocks) == len(rows)
        assert np.array_equal(spilled.lengths(rows), np.diff(offsets))


def test_prepare_of_many_labels_prints_a_few(invoke, tmp_path):
    """The summary listed every label: 10,000 of them made a line of 80 KB."""
    rows = [(f"label{c:04d}", f"word{c} common text") for c in range(1000) for _ in range(3)]
    result = invoke("prepare", "--from", write_header_csv(tmp_path / "many.csv", rows), "--out", tmp_path / "data")
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip().endswith("labels label0000, label0001, label0002, label0003, label0004, … (995 more)")
    assert len(result.stdout) < 300
