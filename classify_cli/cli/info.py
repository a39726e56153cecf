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
    from ..bundle import model_info

    described = model_info(run_dir)
    if fmt is Format.json:
        print(json.dumps(described, ensure_ascii=False))
        return
    for key, value in described.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(map(str, value))
        print(f"{key + ':':<18}{shown(value)}")


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
