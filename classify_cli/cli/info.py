from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ._util import DEFAULT_RUN, Debug, app, run, shown


class Format(StrEnum):
    text = "text"
    json = "json"


def info(run_dir: Path, fmt: Format) -> None:
    """What a model is, from its model.json: printed as lines or as one JSON object."""
    from ..model.meta import model_info

    described = model_info(run_dir)
    if fmt is Format.json:
        print(json.dumps(described, ensure_ascii=False))
        return
    for key, value in described.items():
        print(f"{_words(key) + ':':<18}{shown(_text(value))}")


def _words(key: str) -> str:
    return key.replace("_", " ")


def _text(value: object) -> str:
    """A value as a person reads it: yes/no and -, not Python's True/False/None; lists and dicts as lists."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{_words(k)} {_text(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(_text, value))
    return str(value)


@app.command("info")
def info_cli(
    run_dir: Annotated[Path, typer.Argument(help="Run directory of a trained model.")] = DEFAULT_RUN,
    fmt: Annotated[Format, typer.Option("--format", help="Lines to read, or one JSON object.")] = Format.text,
    debug: Debug = False,
) -> None:
    """Describe a trained model.

    Its labels, features, data, best epoch and sizes, from model.json (the weights' checksum
    is checked by evaluate).

    \b
    Example:
      classify info runs/ag_news --format json
    """
    run(info, run_dir, fmt, debug=debug)
