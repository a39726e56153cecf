"""What a new user meets first: help with examples, --version, info, config, train's summary."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from classify_cli import __version__
from classify_cli.cli import app
from classify_cli.util.config import Config, config_from_dict, load_config

COMMANDS = ["prepare", "train", "evaluate", "predict", "compress", "report", "info", "config", "tune", "version"]
REPO = Path(__file__).parents[1]


def test_top_level_help_lists_every_command_in_full(runner):
    result = runner.invoke(app, ["--help"], terminal_width=80)
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert sorted(listed) == sorted(COMMANDS)
    assert "..." not in result.stdout.split("Commands:")[1]  # no description cut short


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_has_an_example(runner, command):
    result = runner.invoke(app, [command, "--help"], terminal_width=100)
    assert result.exit_code == 0 and "Example" in result.stdout
    example = result.stdout.split("Example")[1].splitlines()[1]
    assert example.strip().startswith(f"classify {command}")


@pytest.mark.parametrize("args", [["--version"], ["-V"], ["version"]])
def test_version(invoke, args):
    result = invoke(*args)
    assert result.exit_code == 0 and result.stdout == f"classify {__version__}\n"


INFO_KEYS = {
    "model": None,
    "task": None,
    "labels": None,
    "vocabulary": None,
    "features": {"words_kept", "ngram_buckets_kept", "ngrams", "ngram_hash", "weighting"},
    "embed_dim": None,
    "best_epoch": None,
    "val_accuracy": None,
    "val_loss": None,
    "data": None,
    "rows": None,
    "train": {"lr", "batch_size", "ranks"},
    "size": {"weights_bytes", "dtype"},
    "compressed": None,
    "tuned": None,
    "created": None,
    "classify_version": None,
}


def test_info_describes_the_model(invoke, trained):
    _, _, run = trained
    described = json.loads(invoke("info", run, "--format", "json").stdout)
    assert set(described) == set(INFO_KEYS)  # the documented keys, all snake_case, for scripts
    for key, nested in INFO_KEYS.items():
        assert nested is None or set(described[key]) == nested, key
    meta = json.loads((run / "model.json").read_text())
    assert described["labels"] == meta["labels"] and described["vocabulary"] == meta["head"]["vocab_size"]
    assert described["best_epoch"] == meta["best"]["epoch"] and described["compressed"] is False
    assert described["rows"] == meta["data"]["rows"] and "warning" not in described
    text = invoke("info", run).stdout
    assert text.startswith(f"model:            {run}\n") and "best epoch:" in text
    assert "compressed:       no\n" in text and "tuned:            no\n" in text
    assert not {"True", "False", "None"} & set(text.replace(",", " ").split())


def test_info_keys_are_documented():
    readme = (REPO / "README.md").read_text()
    documented = readme.split("`info --format json` keys:")[1].split("\n\n")[0]
    for key, nested in INFO_KEYS.items():
        assert f"`{key}`" in documented, key
        for inner in nested or ():
            assert f"`{inner}`" in documented, inner


def test_info_refuses_what_is_not_a_model(invoke, tmp_path):
    result = invoke("info", tmp_path)
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


def test_config_prints_what_load_config_reads_back(invoke, tmp_path):
    result = invoke("config", "--set", 'prepare.text_fields=["title","body"]', "--set", "train.epochs=3")
    assert result.exit_code == 0, result.output
    path = tmp_path / "printed.toml"
    path.write_text(result.stdout)
    again = load_config(path)
    assert again.prepare.text_fields == ["title", "body"] and again.train.epochs == 3
    assert "# max_tokens (not set)" in result.stdout


def test_the_shipped_config_is_the_built_in_defaults():
    """Defaults live in config.py; configs/agnews.toml spells them out and may not drift."""
    shipped = config_from_dict(tomllib.loads((REPO / "configs" / "agnews.toml").read_text()))
    assert shipped == Config()


def test_train_ends_with_a_summary_for_people_and_json_for_scripts(invoke, trained, tmp_path):
    _, data, _ = trained
    text = invoke("train", "--data", data, "--out", tmp_path / "a", "--epochs", "2", "--format", "text")
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[0].startswith("best epoch ") and "validation accuracy" in lines[0]
    assert lines[1] == f"saved to {tmp_path / 'a'}" and f"classify evaluate --model {tmp_path / 'a'}" in text.stdout
    scripted = invoke("train", "--data", data, "--out", tmp_path / "b", "--epochs", "2")  # stdout is not a terminal
    summary = json.loads(scripted.stdout)
    assert summary["epochs"] == 2 and summary["out"] == str(tmp_path / "b")


def test_columns_are_named_on_the_command_line(invoke, trained, tmp_path):
    from .conftest import make_rows

    _, _, run = trained
    path = tmp_path / "news.csv"
    path.write_text("headline,topic\n" + "".join(f"{text},{label}\n" for label, text in make_rows(10, seed=5)))
    refused = invoke("evaluate", "--model", run, "--data", path, "--format", "json")
    assert refused.exit_code == 2 and "name the columns with --text-field / --label-field" in refused.stderr
    named = ["--text-field", "headline", "--label-field", "topic"]
    report = invoke("evaluate", "--model", run, "--data", path, "--format", "json", *named)
    assert report.exit_code == 0 and json.loads(report.stdout)["n"] == 40, report.output
    labeled = invoke("predict", "--model", run, "--file", path, "--format", "jsonl", "--text-field", "headline")
    assert labeled.exit_code == 0 and len(labeled.stdout.splitlines()) == 40
    prepared = invoke("prepare", "--from", path, "--out", tmp_path / "data", *named)
    assert prepared.exit_code == 0, prepared.output
    assert json.loads((tmp_path / "data" / "manifest.json").read_text())["config"]["prepare"]["text_fields"] == [
        "headline"
    ]


def test_hints_name_what_exists(invoke, tmp_path):
    corpus = tmp_path / "news.csv"
    corpus.write_text("text,label\na,b\n")
    train = invoke("train", "--data", corpus, "--out", tmp_path / "run")
    assert train.exit_code == 2 and f"classify prepare --from {corpus} --out data/news" in train.stderr
    listed = invoke("config", "--set", "prepare.text_fields=headline,body")
    assert listed.exit_code == 2 and 'expected a list, e.g. ["title", "body"]' in listed.stderr


def _run_with_terminal_stderr(args: list, columns: int = 100, no_color: bool = False) -> tuple[str, str]:
    """Run classify with stderr on a pseudo-terminal and stdout on a pipe: (stdout, what the terminal got)."""
    import os
    import pty
    import subprocess
    import sys
    import threading

    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": str(columns)}
    env.pop("NO_COLOR", None)
    if no_color:  # a terminal still, but no progress bar
        env["NO_COLOR"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "classify_cli", *map(str, args)], stdout=subprocess.PIPE, stderr=slave, env=env
    )
    os.close(slave)
    seen = []

    def drain() -> None:  # the terminal is read alongside stdout: either could fill and block the command
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal's other end closed: the process is done with it
                return
            if not chunk:
                return
            seen.append(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    out = proc.stdout.read().decode()
    proc.wait(timeout=120)
    reader.join(timeout=10)
    os.close(master)
    return out, b"".join(seen).decode(errors="replace")


@pytest.mark.parametrize("command", ["predict", "evaluate", "prepare", "train"])
def test_progress_shows_on_a_terminal_stderr_and_leaves_stdout_alone(trained, tmp_path, command):
    corpus, data, run = trained
    texts = tmp_path / "texts.txt"
    texts.write_text("goal coach season\n" * 40_000)  # long enough for the bar to be drawn
    args = {
        "predict": ["predict", "--model", run, "--file", texts, "--format", "jsonl"],
        "evaluate": ["evaluate", "--model", run, "--format", "json"],
        "prepare": ["prepare", "--from", corpus, "--out", tmp_path / "data"],
        "train": ["train", "--data", data, "--out", tmp_path / "run", "--set", "train.device=cpu", "--format", "json"],
    }[command]
    out, terminal = _run_with_terminal_stderr(args)
    unit = {"predict": "texts", "evaluate": "rows", "prepare": "rows", "train": "steps"}[command]
    assert f" {unit}" in terminal and "\x1b[" in terminal  # a bar, drawn for a terminal
    assert "\x1b" not in out  # results untouched by it
    if command == "predict":
        assert len(out.splitlines()) == 40_000 and json.loads(out.splitlines()[-1])["text"] == "goal coach season"
    elif command in ("evaluate", "train"):
        json.loads(out)


@pytest.mark.parametrize("width", [20, 40, 60, 80])
@pytest.mark.parametrize(
    "message",
    [
        "epoch   1/5  lr 0.5       train loss 1.2345  val loss 1.2345  val acc 0.8765     3.1s  *best",
        "features: 2,000 train / 222 validation docs, vocabulary 12,345, 40,000 n-gram buckets seen, 1.2s; "
        "device cpu; embedding 52,345 x 64, batch 32, lr 0.5",
        "warning: a path with no separator at all: " + "/very/long" * 12,
        "short",
    ],
    ids=["epoch", "features", "long-word", "short"],
)
def test_log_lines_fold_within_the_width(message, width):
    from classify_cli.cli._util import fitted

    lines = fitted(message, width).split("\n")
    assert all(len(line) <= width for line in lines)
    assert all(line.startswith("  ") for line in lines[1:])  # continuation lines stand out
    assert "".join(message.split()) == "".join("".join(lines).split())  # nothing lost
    assert len(lines) == 1 if len(message) <= width else len(lines) > 1


@pytest.mark.parametrize("no_color", [False, True], ids=["bar", "no-bar"])
def test_train_logs_fit_a_narrow_terminal(trained, tmp_path, no_color):
    import re

    _, data, _ = trained
    args = ["train", "--data", data, "--out", tmp_path / "run", "--set", "train.device=cpu", "--format", "json"]
    _, terminal = _run_with_terminal_stderr(args, columns=60, no_color=no_color)
    # what the terminal shows, line by line: escape sequences out, each \r redraw a line of its own
    shown = re.split(r"[\r\n]+", re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal))
    assert any(line.startswith("epoch ") for line in shown) and any(line.startswith("features: ") for line in shown)
    assert max(map(len, shown)) <= 60, [line for line in shown if len(line) > 60]
    # folded at separators, the rest indented under the line's start: not cut where the edge fell
    for line in shown:
        if "val acc" in line or "vocabulary" in line:
            assert line.startswith(("epoch ", "features: ", "  ")), line


def test_no_progress_when_stderr_is_not_a_terminal(invoke, trained, tmp_path):
    _, _, run = trained
    texts = tmp_path / "texts.txt"
    texts.write_text("goal coach season\n" * 100)
    result = invoke("predict", "--model", run, "--file", texts, "--format", "jsonl")
    assert result.exit_code == 0 and result.stderr == ""


def test_shell_completion_script(runner, monkeypatch):
    import typer.completion

    # --show-completion takes no shell name: typer finds the shell among the test's parent
    # processes, and a run with none (a background job under `timeout`, some CI) finds none
    monkeypatch.setattr(typer.completion, "_get_shell_name", lambda: "bash")
    result = runner.invoke(app, ["--show-completion"], prog_name="classify")
    assert result.exit_code == 0 and "_classify_completion" in result.stdout and "complete " in result.stdout


def test_predict_carries_an_id_column_through(invoke, trained, tmp_path):
    _, _, run = trained
    csv_in = tmp_path / "in.csv"
    csv_in.write_text('id,text\nA1,goal coach season\nB2,"bank shares, profit"\n')
    jsonl_in = tmp_path / "in.jsonl"
    jsonl_in.write_text('{"doc": 7, "text": "goal coach season"}\n{"doc": 8, "text": "bank shares"}\n')
    records = [
        json.loads(x)
        for x in invoke(
            "predict", "--model", run, "--file", csv_in, "--id-field", "id", "--format", "jsonl"
        ).stdout.splitlines()
    ]
    assert [r["id"] for r in records] == ["A1", "B2"] and list(records[0])[0] == "id"
    explained = invoke("predict", "--model", run, "--file", csv_in, "--id-field", "id", "--format", "json", "--explain")
    assert [r["id"] for r in json.loads(explained.stdout)] == ["A1", "B2"]
    rows = invoke(
        "predict", "--model", run, "--file", csv_in, "--id-field", "id", "--format", "csv"
    ).stdout.splitlines()
    assert rows[0] == "id,label,probability,abstained,text" and rows[2].startswith("B2,")
    from_json = invoke("predict", "--model", run, "--file", jsonl_in, "--id-field", "doc", "--format", "jsonl")
    assert [json.loads(x)["id"] for x in from_json.stdout.splitlines()] == ["7", "8"]
    lines = tmp_path / "in.txt"
    lines.write_text("goal\n")
    refused = invoke("predict", "--model", run, "--file", lines, "--id-field", "id")
    assert refused.exit_code == 2 and "--id-field needs input with columns" in refused.stderr


def test_a_bad_choice_reads_as_plain_words(invoke):
    result = invoke("predict", "--format", "yaml", "x")
    assert result.exit_code == 2 and "Value error" not in result.stderr
    assert "'yaml' is not one of 'table', 'json', 'jsonl', 'csv'" in result.stderr
