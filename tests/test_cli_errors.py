"""Expected failures at the command line: one `error: ...` line on stderr and the documented exit code."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from classify_cli.cli import app

from .conftest import edit_json


def one_error_line(result) -> str:
    """The single line a failing command printed on stderr (and nothing else, no traceback)."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


# --- a model path that is a regular file ----------------------------------------------------


@pytest.mark.parametrize("command", [["predict", "hi"], ["evaluate"]])
def test_model_path_that_is_a_file_is_no_model(invoke, tmp_path, command):
    (tmp_path / "keep.txt").write_text("not a model\n")
    result = invoke(*command, "--model", "keep.txt")
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert line.startswith("error: no model at keep.txt") and "unexpected" not in line
    assert (tmp_path / "keep.txt").read_text() == "not a model\n"


# --- Click's usage errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--bogus"], "No such option: --bogus"),
        (["evaluate", "--format", "yaml"], "Invalid value for '--format'"),
        (["predict", "-k", "0", "x"], "Invalid value for '-k' / '--top-k'"),
        (["evaluate", "--model"], "Option '--model' requires an argument. (see classify evaluate --help)"),
        (["bogus"], "No such command 'bogus'"),
    ],
    ids=["unknown-option", "bad-choice", "out-of-range", "missing-value", "unknown-command"],
)
def test_usage_errors_are_one_line(invoke, args, message):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert message in line
    assert "--help" in line  # where to read the usage instead of a boxed panel
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("value", "shown"), [("nan", "nan"), ("-1", "-1.0"), ("2", "2.0"), ("inf", "inf")], ids=["nan", "-1", "2", "inf"]
)
def test_predict_refuses_a_min_confidence_outside_0_to_1(invoke, trained, value, shown):
    _, _, run = trained
    result = invoke("predict", "--model", run, "--min-confidence", value, "goal")
    assert result.exit_code == 2 and result.stdout == ""
    assert one_error_line(result) == f"error: --min-confidence must be between 0 and 1, not {shown}"


def test_usage_error_through_the_real_entry_point(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "classify_cli", "evaluate", "--fail-under"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: Option '--fail-under' requires an argument. (see python -m classify_cli evaluate --help)"
    ]


def test_no_arguments_still_shows_the_help(invoke):
    result = invoke()
    assert "Usage:" in result.output and "evaluate" in result.output
    assert "error:" not in result.output


# --- help text is shown as written, square brackets included --------------------------------


def _help_texts():
    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        for param in command.params:
            if getattr(param, "help", None) and "[" in param.help:
                yield name, param.help


@pytest.mark.parametrize(("command", "text"), list(_help_texts()))
def test_help_shows_bracketed_text(runner, command, text):
    result = runner.invoke(app, [command, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    # compare with line breaks undone: the help is wrapped to the terminal
    assert " ".join(text.split()) in " ".join(result.output.split())


def test_bracketed_help_texts_are_found():
    found = dict.fromkeys(name for name, _ in _help_texts())
    assert {"evaluate", "report"} <= set(found)


# --- evaluate without --data when the training data is gone ---------------------------------


def test_evaluate_refuses_when_training_data_is_gone(invoke, trained, tmp_path):
    _, data, run = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    gone = tmp_path / "moved-away"
    edit_json(copy / "model.json", lambda meta: meta["data"].update(path=str(gone)))
    # a look-alike at the old fallback path must not be evaluated on silently
    shutil.copytree(data, Path("data/ag_news"))

    result = invoke("evaluate", "--model", copy, "--format", "json")
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert f"training data at {gone} is gone" in line and "--data" in line
    assert "data/ag_news" not in line
    assert result.stdout == ""
    # with --data it evaluates as before
    assert invoke("evaluate", "--model", copy, "--data", data, "--format", "json").exit_code == 0


# --- thresholds outside their metric's range ------------------------------------------------


@pytest.mark.parametrize(
    ("option", "threshold"),
    [
        ("--fail-under", "accuracy=nan"),
        ("--fail-under", "accuracy=2"),
        ("--fail-under", "macro_f1=-0.1"),
        ("--fail-under", "mean_confidence=inf"),
        ("--fail-over", "ece=1.5"),
        ("--fail-over", "oov_rate=nan"),
        ("--fail-over", "loss=-1"),
        ("--fail-over", "loss=inf"),
        ("--fail-over", "loss=nan"),
    ],
)
def test_nonsense_thresholds_are_refused_before_evaluating(invoke, trained, option, threshold):
    _, data, run = trained
    result = invoke("evaluate", "--model", run, "--data", data, "--format", "json", option, threshold)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    metric = threshold.partition("=")[0]
    assert f"{option} {metric}" in line
    assert result.stdout == ""  # refused before any report


@pytest.mark.parametrize(
    ("option", "threshold"),
    [("--fail-under", "accuracy=0"), ("--fail-under", "weighted_f1=1"), ("--fail-over", "loss=5")],
)
def test_thresholds_at_the_edges_are_accepted(invoke, trained, option, threshold):
    _, data, run = trained
    result = invoke("evaluate", "--model", run, "--data", data, "--format", "json", option, threshold)
    assert result.exit_code in (0, 1), result.output
    assert json.loads(result.stdout)["thresholds"][0]["passed"] is (result.exit_code == 0)
