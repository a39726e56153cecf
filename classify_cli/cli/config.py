from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._util import Debug, Overrides, app, load_config_or_default, parse_overrides, run


def config(path: Path | None, overrides: dict) -> None:
    """The effective config (defaults, the file, the overrides) as TOML."""
    from ..util.config import to_toml

    print(to_toml(load_config_or_default(path, overrides)), end="")


@app.command("config")
def config_cli(
    path: Annotated[
        Path | None, typer.Option("--config", help="TOML config (default: configs/agnews.toml, if here).")
    ] = None,
    overrides: Overrides = None,
    debug: Debug = False,
) -> None:
    """Print the config prepare and train would use, as TOML.

    Defaults, then the --config file, then --set overrides; unset keys as comments.

    \b
    Example:
      classify config --set train.epochs=5 > my.toml
      classify train --config my.toml
    """
    run(config, path, run(parse_overrides, overrides, debug=debug), debug=debug)
