"""The file readers behind prepare, evaluate and predict --file: one parser, one strictness.

A file one command refuses, the others refuse with the same line; empty inputs, byte-order
marks, undecodable bytes and every file type evaluate reads are covered for all three.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classify_cli.data.prepared import load_prepared

from .conftest import make_rows, modules_imported_by, write_header_csv

BOM = b"\xef\xbb\xbf"


def _one_error(result, code: int, message: str) -> None:
    """Exit ``code``, stderr ending with exactly one ``error:`` line holding ``message``, no traceback."""
    assert result.exit_code == code, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.output


def _labeled_csv(path: Path, n_per_class: int = 3) -> Path:
    """A header CSV (text,label) with labels the session model knows."""
    return write_header_csv(path, make_rows(n_per_class, seed=7))


def _texts(result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [json.loads(line)["text"] for line in result.stdout.splitlines()]


def _run(invoke, command: str, path: Path, run: Path, *extra: str, input: bytes | str | None = None):
    if command == "prepare":
        return invoke("prepare", "--from", path, "--out", path.parent / "prepared", *extra)
    if command == "evaluate":
        return invoke("evaluate", "--model", run, "--data", path, "--format", "json", *extra)
    return invoke("predict", "--model", run, "--file", path, "--format", "jsonl", *extra, input=input)


COMMANDS = ["prepare", "evaluate", "predict"]


# --- 1. malformed CSV: predict is as strict as prepare and evaluate --------------------------

MALFORMED_FOR_PREDICT = [
    # a quote never closed would swallow the rest of the file as one text
    ("unclosed-quote", b'text\n"unterminated\nsecond\nthird\n', "line 2: malformed CSV (unexpected end of data"),
    ("too-many-fields", b"text,other\na,b,c,d\n", "line 2 has 4 fields, the header 2"),
    ("too-few-fields", b"text,other\nhello,there\nalone\n", "line 3 has 1 fields, the header 2"),
    ("ag-layout-not-an-index", b"1,title,body\nnot a row\n", "line 2 is not 'class index, text...'"),
]


@pytest.mark.parametrize("name, content, message", MALFORMED_FOR_PREDICT, ids=[m[0] for m in MALFORMED_FOR_PREDICT])
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_predict_refuses_malformed_csv(invoke, trained, tmp_path, name, content, message, fmt):
    _, _, run = trained
    path = tmp_path / "batch.csv"
    path.write_bytes(content)
    result = invoke("predict", "--model", run, "--file", path, "--format", fmt)
    _one_error(result, 2, message)
    assert result.stdout == ""  # not even the CSV header before the refusal


@pytest.mark.parametrize("command", COMMANDS)
def test_unclosed_quote_is_the_same_error_everywhere(invoke, trained, tmp_path, command):
    _, _, run = trained
    path = tmp_path / "batch.csv"
    path.write_bytes(b'text,label\nbank shares,Business\n"the rest,World\ngoal,Sports\n')
    result = _run(invoke, command, path, run)
    _one_error(result, 2, "line 3: malformed CSV (unexpected end of data: a quoted field is never closed)")


def test_predict_csv_from_stdin_is_as_strict(invoke, trained):
    _, _, run = trained
    result = invoke("predict", "--model", run, "--file", "-", "--input-format", "csv", input="text\na,b\n")
    _one_error(result, 2, "<stdin>: line 2 has 2 fields, the header 1")


# --- 2. empty inputs -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["empty.csv", "empty.txt", "empty.jsonl", "empty.json"])
def test_predict_refuses_an_empty_file(invoke, trained, tmp_path, name):
    _, _, run = trained
    path = tmp_path / name
    path.write_bytes(b"")
    for fmt in ("table", "json", "csv"):
        result = invoke("predict", "--model", run, "--file", path, "--format", fmt)
        _one_error(result, 2, f"{path}: empty file")
        assert result.stdout == ""


@pytest.mark.parametrize(
    "name, content",
    [("header.csv", b"text,label\n"), ("blank-lines.csv", b"text\n\n\n"), ("empty-array.json", b"[]\n")],
)
def test_predict_with_nothing_to_label_is_an_error_as_in_evaluate(invoke, trained, tmp_path, name, content):
    _, _, run = trained
    path = tmp_path / name
    path.write_bytes(content)
    for fmt in ("json", "csv"):
        result = invoke("predict", "--model", run, "--file", path, "--format", fmt)
        _one_error(result, 2, f"{path}: no texts to label")
        assert result.stdout == ""  # no "[]", no lone CSV header
    if name == "header.csv":
        _one_error(_run(invoke, "evaluate", path, run), 2, "no labeled rows to evaluate")


def test_predict_refuses_empty_stdin(invoke, trained):
    # a pipeline that produced nothing usually means the step before it failed: say so
    _, _, run = trained
    for args in ([], ["--input-format", "csv"], ["--input-format", "jsonl"]):
        result = invoke("predict", "--model", run, "--file", "-", "--format", "jsonl", *args, input="")
        _one_error(result, 2, "<stdin>: empty input")
        assert result.stdout == ""


# --- 3. the line of an undecodable byte --------------------------------------------------------


def _bad_byte_on_line_151(path: Path, header: bytes, row: bytes) -> Path:
    # 149 good rows after the header, far beyond the decoder's first block, then a Latin-1 é
    path.write_bytes(header + row * 149 + row.replace(b"shares", b"caf\xe9"))
    return path


@pytest.mark.parametrize("command", COMMANDS)
def test_utf8_error_names_the_right_line_in_csv(invoke, trained, tmp_path, command):
    _, _, run = trained
    path = _bad_byte_on_line_151(
        tmp_path / "batch.csv", b"text,label\n", b"bank shares rally on wall street,Business\n"
    )
    _one_error(_run(invoke, command, path, run), 2, "not valid UTF-8 (line 151): byte 0xe9 cannot be decoded")


@pytest.mark.parametrize("command", COMMANDS)
def test_utf8_error_names_the_right_line_in_jsonl(invoke, trained, tmp_path, command):
    _, _, run = trained
    row = json.dumps({"text": "bank shares rally on wall street", "label": "Business"}).encode() + b"\n"
    path = _bad_byte_on_line_151(tmp_path / "batch.jsonl", row, row)
    _one_error(_run(invoke, command, path, run), 2, "not valid UTF-8 (line 151): byte 0xe9 cannot be decoded")


def test_utf8_error_names_the_right_line_in_plain_lines_and_stdin(invoke, trained, tmp_path):
    _, _, run = trained
    path = _bad_byte_on_line_151(tmp_path / "batch.txt", b"", b"bank shares rally on wall street\n")
    result = invoke("predict", "--model", run, "--file", path)
    _one_error(result, 2, "not valid UTF-8 (line 150): byte 0xe9")
    # stdin cannot be read twice: the line comes from the reader's count and the failing block
    content = b"".join(b"line %d\n" % i for i in range(1, 3001)) + b"caf\xe9\n"
    result = invoke("predict", "--model", run, "--file", "-", input=content)
    _one_error(result, 2, "<stdin>: not valid UTF-8 (line 3001): byte 0xe9")


# --- 4. predict --file reads every file type evaluate reads ----------------------------------


def test_predict_reads_a_json_array(invoke, trained, tmp_path):
    _, _, run = trained
    rows = make_rows(2, seed=3)
    objects = tmp_path / "batch.json"
    objects.write_text(json.dumps([{"text": t, "label": lab} for lab, t in rows]))
    assert _texts(invoke("predict", "--model", run, "--file", objects, "--format", "jsonl")) == [t for _, t in rows]
    assert _run(invoke, "evaluate", objects, run).exit_code == 0  # the same file, labeled
    strings = tmp_path / "strings.json"
    strings.write_text(json.dumps(["bank shares", "goal"], indent=2))
    assert _texts(invoke("predict", "--model", run, "--file", strings, "--format", "jsonl")) == ["bank shares", "goal"]


def test_predict_reads_parquet(invoke, trained, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    _, _, run = trained
    rows = make_rows(2, seed=4)
    path = tmp_path / "batch.parquet"
    pq.write_table(pa.table({"text": [t for _, t in rows], "label": [lab for lab, _ in rows]}), path)
    assert _texts(invoke("predict", "--model", run, "--file", path, "--format", "jsonl")) == [t for _, t in rows]
    unlabeled = tmp_path / "unlabeled.parquet"
    pq.write_table(pa.table({"text": ["bank shares"]}), unlabeled)
    assert _texts(invoke("predict", "--model", run, "--file", unlabeled, "--format", "jsonl")) == ["bank shares"]
    result = invoke("predict", "--model", run, "--file", "-", "--input-format", "parquet", input=path.read_bytes())
    _one_error(result, 2, "Parquet cannot be read from standard input")


def test_predict_on_csv_stays_light(trained, tmp_path):
    """Reading a CSV to predict imports neither torch nor the Parquet / Hub libraries."""
    _, _, run = trained
    path = _labeled_csv(tmp_path / "batch.csv")
    args = ["predict", "--model", run, "--file", path, "--format", "csv"]
    assert modules_imported_by(args, ("torch", "pyarrow", "datasets", "pandas")) == []


# --- 5. a byte-order mark (Excel's "CSV UTF-8") is not part of the first column's name -------


def test_bom_csv_is_read_by_every_command(invoke, trained, tmp_path):
    _, _, run = trained
    plain = _labeled_csv(tmp_path / "plain.csv", n_per_class=10)
    marked = tmp_path / "marked" / "batch.csv"
    marked.parent.mkdir()
    marked.write_bytes(BOM + plain.read_bytes())

    assert _texts(_run(invoke, "predict", marked, run)) == _texts(_run(invoke, "predict", plain, run))
    assert json.loads(_run(invoke, "evaluate", marked, run).stdout)["n"] == 40
    result = _run(invoke, "prepare", marked, run)
    assert result.exit_code == 0, result.output
    assert sum(len(s) for s in load_prepared(marked.parent / "prepared").splits.values()) == 40


def test_bom_jsonl_and_stdin(invoke, trained, tmp_path):
    _, _, run = trained
    path = tmp_path / "batch.jsonl"
    path.write_bytes(BOM + b'{"text": "bank shares", "label": "Business"}\n')
    assert _texts(_run(invoke, "predict", path, run)) == ["bank shares"]
    assert json.loads(_run(invoke, "evaluate", path, run).stdout)["n"] == 1
    result = invoke("predict", "--model", run, "--file", "-", "--format", "jsonl", input=BOM + b"bank shares\n")
    assert _texts(result) == ["bank shares"]


@pytest.mark.parametrize(
    "content, message",
    [
        (
            '{"text": "a \\ud800 b", "label": "x"}\n{"text": "c", "label": "y"}\n',
            "text holds '\\ud800', a lone surrogate",
        ),
        ('{"text": "a", "label": "\\udfff"}\n{"text": "c", "label": "y"}\n', "label holds '\\udfff', a lone surrogate"),
        ("[" * 100_000 + "]" * 100_000 + "\n", "nested too deeply"),
        ('{"text": ' + "[" * 100_000 + "]" * 100_000 + ', "label": "x"}\n', "nested too deeply"),
    ],
    ids=["surrogate-text", "surrogate-label", "deep-array", "deep-field"],
)
def test_hostile_json_is_one_clean_error(invoke, trained, tmp_path, content, message):
    _, _, run = trained
    path = tmp_path / "train.jsonl"
    path.write_text(content, encoding="utf-8")
    for args in (["prepare", "--from", path, "--out", tmp_path / "out"], ["predict", "--model", run, "--file", path]):
        result = invoke(*args)
        if "label holds" in message and args[0] == "predict":
            continue  # predict reads no labels
        assert result.exit_code == 2, result.output
        assert message in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("key", ["train.seed", "prepare.seed"])
@pytest.mark.parametrize("value", ["-5", "100000000000000000000"])
def test_seeds_out_of_range_are_config_errors(invoke, tmp_path, key, value):
    result = invoke("prepare", "--from", tmp_path / "nothing.csv", "--out", tmp_path / "o", "--set", f"{key}={value}")
    assert result.exit_code == 2 and f"{key} must be between 0 and 4294967295" in result.stderr, result.output


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".jsonl"])
def test_an_endless_line_is_refused_in_bounded_memory(invoke, trained, tmp_path, monkeypatch, suffix):
    import classify_cli.inputs.textio

    _, _, run = trained
    monkeypatch.setattr(classify_cli.inputs.textio, "MAX_LINE_CHARS", 1000)  # the real bound is 16M characters
    path = tmp_path / f"endless{suffix}"
    content = {
        ".csv": "text,label\n" + "x" * 5000 + ",a\n",
        ".jsonl": '"ok"\n"' + "x" * 5000,
        ".txt": "ok\n" + "x" * 5000,
    }
    path.write_text(content[suffix])
    result = invoke("predict", "--model", run, "--file", path, "--format", "jsonl")
    assert result.exit_code == 2, result.output
    assert "line 2 is longer than 1,000 characters" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("make", ["fifo", "loop", "dangling", "directory"])
def test_a_split_that_is_not_a_regular_file_is_named(invoke, tmp_path, make):
    import os

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    train = corpus / "train.csv"
    {
        "fifo": lambda: os.mkfifo(train),
        "loop": lambda: train.symlink_to(train),
        "dangling": lambda: train.symlink_to(corpus / "gone.csv"),
        "directory": lambda: train.mkdir(),
    }[make]()
    result = invoke("prepare", "--from", corpus, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert f"{train} is not a regular file" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["prepare", "evaluate"])
def test_a_quote_never_closed_is_refused_in_bounded_memory(invoke, trained, tmp_path, monkeypatch, command):
    """A stray quote turns the rest of the file into one field; that record is bounded like a line."""
    import csv

    import classify_cli.inputs.csvfile

    _, data, run = trained
    monkeypatch.setattr(classify_cli.inputs.csvfile, "MAX_LINE_CHARS", 1000)  # the real bound is 16M characters
    old_limit = csv.field_size_limit(1000)
    try:
        path = tmp_path / "train.csv"
        path.write_text('text,label\nfine words,a\n"a stray quote,b\n' + "more words,a\n" * 500)
        args = {
            "prepare": ["prepare", "--from", path, "--out", tmp_path / "out"],
            "evaluate": ["evaluate", "--model", run, "--data", path, "--format", "json"],
        }[command]
        result = invoke(*args)
    finally:
        csv.field_size_limit(old_limit)
    assert result.exit_code == 2, result.output
    assert "line 3" in result.stderr and "never closed" in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "out").exists()


def test_batches_close_on_a_count_or_on_characters(monkeypatch):
    import classify_cli.util.parallel
    from classify_cli.util.parallel import batches

    assert [len(b) for b in batches(["ab"] * 5, 2)] == [2, 2, 1]
    monkeypatch.setattr(classify_cli.util.parallel, "BATCH_CHARS", 5)
    assert list(batches(["abc", "abc", "abc", "a"], 10)) == [["abc", "abc"], ["abc", "a"]]
    assert list(batches([("abcdef", "x"), ("a", "y")], 10, lambda row: len(row[0]))) == [
        [("abcdef", "x")],
        [("a", "y")],
    ]


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_small_batches_give_the_same_output(invoke, trained, tmp_path, monkeypatch, command):
    """Batches closed on characters (many, in the worker pool) change nothing in the output."""
    import classify_cli.inputs.csvfile
    import classify_cli.util.parallel

    _, _, run = trained
    path = write_header_csv(tmp_path / "batch.csv", make_rows(30, seed=3))
    args = {
        "predict": ["predict", "--model", run, "--file", path, "--format", "jsonl"],
        "evaluate": ["evaluate", "--model", run, "--data", path, "--format", "json"],
    }[command]
    whole = invoke(*args)
    monkeypatch.setattr(classify_cli.util.parallel, "BATCH_CHARS", 200)
    monkeypatch.setattr(classify_cli.inputs.csvfile, "BATCH_CHARS", 200)
    small = invoke(*args)
    assert whole.exit_code == small.exit_code == 0, small.output
    strip = (
        (lambda out: {k: v for k, v in json.loads(out).items() if k != "evaluated_at"})
        if command == "evaluate"
        else str
    )
    assert strip(small.stdout) == strip(whole.stdout)
