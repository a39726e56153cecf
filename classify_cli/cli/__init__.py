"""The ``classify`` command line: one module per command, each imported only when it runs."""

import os
import sys

from ._util import app

__all__ = ["app", "main"]


def main() -> None:
    import signal

    # SIGTERM ends a command as Ctrl-C does (exit 130, "interrupted"); train installs its own
    # handler, which saves a checkpoint first
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        app()
    except SystemExit as exc:
        _end_outside_a_broken_world(exc.code)
        raise


def _end_outside_a_broken_world(code: object) -> None:
    """A torchrun rank whose peer died keeps its process group up (tearing gloo down then
    aborts the process): end here, output flushed, before the interpreter's exit tears it down."""
    if "torch.distributed" not in sys.modules:  # most commands never load it
        return
    from ..train.distributed import left_up

    if left_up():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 0 if code is None else 1)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
