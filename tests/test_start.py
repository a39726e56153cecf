"""A lean start: `classify --help` imports no command, and each command only what it needs."""

import json
import subprocess
import sys

import pytest
import typer.main

from classify_cli.cli import app
from classify_cli.cli._util import COMMANDS, TyperCommand


def loaded_by(*args: object, exit_code: int = 0) -> set[str]:
    """The modules a fresh ``classify ARGS`` has imported when it exits."""
    code = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: sys.stderr.write('\\n' + json.dumps(sorted(sys.modules)) + '\\n'))\n"
        "from classify_cli.cli import main\n"
        f"sys.argv = ['classify', *{[str(a) for a in args]!r}]\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == exit_code, result.stderr
    return set(json.loads(result.stderr.splitlines()[-1]))


def commands_in(modules: set[str]) -> set[str]:
    return {m for m in modules if m.startswith("classify_cli.cli.") and m != "classify_cli.cli._util"}


@pytest.mark.parametrize(("args", "exit_code"), [(["--help"], 0), ([], 2), (["--version"], 0)])
def test_the_command_list_imports_no_command(args, exit_code):
    assert commands_in(loaded_by(*args, exit_code=exit_code)) == set()  # `classify` alone: the help, exit 2


def test_a_command_imports_its_own_module_only():
    assert commands_in(loaded_by("version")) == {"classify_cli.cli.version"}
    assert commands_in(loaded_by("predict", "--help")) == {"classify_cli.cli.predict"}


# what `classify predict "text"` may import of classify: its command, reading model.json and the
# weights' header, the tokenizer, the plain-Python head and the records (no torch, numpy, pool, network)
PREDICT_TEXT = {
    "classify_cli",
    *(f"classify_cli.{stage}" for stage in ("cli", "inputs", "model", "serve", "text", "util")),
    "classify_cli.cli._util",
    "classify_cli.cli.predict",
    "classify_cli.inputs.csvfile",  # readers.FORMATS: --input-format's choices and help
    "classify_cli.inputs.readers",
    "classify_cli.inputs.textio",
    "classify_cli.model.meta",
    "classify_cli.model.metrics",  # the model.json schema's metric names, no numpy
    "classify_cli.model.plain_head",
    "classify_cli.model.task",  # how the logits are decided and recorded
    "classify_cli.model.rundir",
    "classify_cli.serve.api",  # check_options
    "classify_cli.serve.plain_labels",
    "classify_cli.serve.prediction",  # OUTPUTS: --format's choices; the records and the table
    "classify_cli.text.token_keys",
    "classify_cli.text.tokens",
    "classify_cli.util.config",
    "classify_cli.util.display",
    "classify_cli.util.errors",
    "classify_cli.util.floats",  # numpy's float32 sums and rounding, in plain Python
    "classify_cli.util.fs",
    "classify_cli.util.parallel",  # batches, for --file; its pool's modules only when it starts one
    "classify_cli.util.safetensors",
    "classify_cli.util.schema",
    "classify_cli.util.version",
}
# each costs start-up and none is needed for a few texts (pydantic: typer 0.29's option checks)
NEVER_FOR_A_TEXT = {
    "numpy",
    "torch",
    "pydantic",
    "multiprocessing",
    "concurrent.futures",
    "socket",
    "urllib.request",
    "datasets",
    "safetensors",
}


@pytest.mark.parametrize("args", [[], ["--format", "json"], ["-k", "2", "--min-confidence", "0.5", "--", "-x"]])
def test_predict_text_imports_only_what_it_needs(trained, args):
    _, _, run = trained
    loaded = loaded_by("predict", "--model", run, *args, "goal coach season")
    assert {m for m in loaded if m.startswith("classify_cli")} == PREDICT_TEXT
    assert loaded & NEVER_FOR_A_TEXT == set()


def test_info_reads_a_model_without_numpy(trained):
    _, _, run = trained
    loaded = loaded_by("info", run)
    assert commands_in(loaded) == {"classify_cli.cli.info"}
    assert loaded & NEVER_FOR_A_TEXT == set()


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_command_table_says_what_each_command_says(name):
    """The list `--help` prints from COMMANDS is the one Click would print from the commands."""
    module, text = COMMANDS[name]
    command = typer.main.get_command(app).commands[name]  # imports classify_cli.cli.<module>
    assert command.callback.__module__ == f"classify_cli.cli.{module}"
    assert " ".join(command.help.split("\n\n")[0].split()) == text
    stand_in = TyperCommand(name=name, help=text)
    for limit in range(10, 120):  # the terminal's width sets how much of it is shown
        assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit)


def test_every_command_is_in_the_table():
    import importlib
    import pkgutil

    import classify_cli.cli

    for found in pkgutil.iter_modules(classify_cli.cli.__path__):
        importlib.import_module(f"classify_cli.cli.{found.name}")
    assert sorted(c.name for c in app.registered_commands) == sorted(COMMANDS)


def test_training_imports_no_compiler(tmp_path):
    """torch's optimizer imports torch._dynamo (a second of start-up) at its first call unless
    train/net.py marks its methods: a run must not pay for a compiler it never uses."""
    from .conftest import make_rows, write_header_csv

    write_header_csv(tmp_path / "train.csv", make_rows(30))
    data, run = tmp_path / "data", tmp_path / "run"
    subprocess.run(
        [sys.executable, "-m", "classify_cli", "prepare", "--from", tmp_path / "train.csv", "--out", data],
        check=True,
        capture_output=True,
    )
    loaded = loaded_by("train", "--data", data, "--out", run, "--set", "train.epochs=2", "--set", 'train.device="cpu"')
    assert "torch" in loaded and "torch._dynamo" not in loaded
