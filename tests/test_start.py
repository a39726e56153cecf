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
