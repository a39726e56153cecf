"""The ``classify`` command line: one module per command, all on one Typer app."""

from . import compress, evaluate, predict, prepare, report, train  # noqa: F401  (register the commands)
from ._util import app

__all__ = ["app", "main"]


def main() -> None:
    app()
