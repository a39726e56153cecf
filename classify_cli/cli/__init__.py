"""The ``classify`` command line: one module per command, all on one Typer app."""

from . import compress, config, evaluate, info, predict, prepare, report, train, tune, version  # noqa: F401  (register the commands)
from ._util import app

__all__ = ["app", "main"]


def main() -> None:
    import signal

    # SIGTERM ends a command as Ctrl-C does (exit 130, "interrupted"); train installs its own
    # handler, which saves a checkpoint first
    signal.signal(signal.SIGTERM, _interrupt)
    app()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
