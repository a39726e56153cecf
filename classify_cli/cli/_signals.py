"""What ``train`` and ``tune`` share on the command line: Ctrl-C and SIGTERM that stop training
at a step boundary, and their output formats."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from enum import StrEnum

from ._util import err


class Format(StrEnum):
    text = "text"
    json = "json"


class StopSignals:
    """Ctrl-C and SIGTERM during training: the first asks it to stop at the next step (and save
    a checkpoint), a second Ctrl-C stops at once. Before the first step (``started`` not yet
    called) there is nothing to save, and either stops at once."""

    def __init__(self) -> None:
        self.running = False

    def started(self) -> None:
        self.running = True


@contextlib.contextmanager
def stop_on_signals(quiet: bool = False) -> Iterator[tuple[Callable[[], bool], StopSignals]]:
    requested = []
    signals = StopSignals()

    def handler(signum, frame):
        if not signals.running or (requested and signum == signal.SIGINT):
            raise KeyboardInterrupt
        if not requested and not quiet:
            err("stopping at the next step boundary (Ctrl-C again to abort without a checkpoint)")
        requested.append(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield (lambda: bool(requested)), signals
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
