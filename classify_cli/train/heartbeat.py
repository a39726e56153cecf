"""How torchrun ranks know the others are alive: a heartbeat in the rendezvous store, meetings
that wait as long as hearts beat, and collectives whose failure says a peer went away."""

from __future__ import annotations

import contextlib
import itertools
import re
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

BEAT_S = 1.0


class LostContact(Exception):
    """A collective failed: a peer went away or stayed silent past the timeout."""


class Heartbeat:
    """This rank's pulse in the rendezvous store, and what it knows of the others' pulses.

    A thread adds 1 to ``classify/beat/RANK`` every ``BEAT_S``; a rank whose counter stops
    moving is stopped (SIGSTOP, a hung machine) or dead, whatever it was doing.
    """

    def __init__(self, store: Any, rank: int, size: int, timeout: float):
        self.store, self.rank, self.size, self.timeout = store, rank, size, timeout
        self._calls = itertools.count()  # every rank meets in the same order, so numbers agree
        self._stop = threading.Event()
        self.store.add(self._key(rank), 1)
        self._thread = threading.Thread(target=self._beat, name="classify-heartbeat", daemon=True)
        self._thread.start()

    def _key(self, rank: int) -> str:
        return f"classify/beat/{rank}"

    def _beat(self) -> None:
        while not self._stop.wait(BEAT_S):
            try:
                self.store.add(self._key(self.rank), 1)
            except Exception:  # noqa: BLE001 (the store is gone: the others will notice our silence)
                return

    def stop(self, wait: bool) -> None:
        """Stop beating; ``wait``: until the thread is out of the store (a daemon thread inside
        torch's C++ when the interpreter exits aborts the process)."""
        self._stop.set()
        if wait:
            self._thread.join(timeout=10 * BEAT_S)

    def _count(self, rank: int) -> int | None:
        try:
            return int(self.store.add(self._key(rank), 0))
        except Exception:  # noqa: BLE001 (the store's host stopped or died)
            return None

    def silent(self) -> list[int]:
        """The other ranks whose heartbeat does not move over two beats and a half."""
        before = {r: self._count(r) for r in range(self.size) if r != self.rank}
        time.sleep(2.5 * BEAT_S)
        return [r for r, n in before.items() if n is None or self._count(r) == n]

    def meet(self, waiting_for: list[int]) -> None:
        """Wait until the ranks ``waiting_for`` reach this meeting too, for as long as their
        hearts beat; LostContact once one's heartbeat has stopped for ``timeout``."""
        n = next(self._calls)
        self.store.set(f"classify/meet/{n}/{self.rank}", "1")
        keys = [f"classify/meet/{n}/{r}" for r in waiting_for]
        seen = {r: (self._count(r), time.monotonic()) for r in waiting_for}
        while True:
            try:
                self.store.wait(keys, timedelta(seconds=BEAT_S))
                return
            except RuntimeError:  # not all there yet (DistStoreError), or the store is gone
                pass
            now = time.monotonic()
            for r in waiting_for:
                count = self._count(r)
                if count is None or count == seen[r][0]:
                    if now - seen[r][1] > self.timeout:
                        raise LostContact(f"no heartbeat for {self.timeout:g} s") from None
                    if count is None:
                        time.sleep(BEAT_S)  # the store answers at once that it is gone: do not spin
                else:
                    seen[r] = (count, now)


@contextlib.contextmanager
def talking() -> Iterator[None]:
    try:
        yield
    except RuntimeError as exc:  # gloo and NCCL raise plain RuntimeErrors (or DistErrors, a subclass)
        raise LostContact(first_line(exc)) from None


def first_line(exc: BaseException) -> str:
    """The gist of a torch.distributed error: its first line, less gloo's source position and advice."""
    line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    line = re.sub(r"^\[[^\]]*\.(cc|cpp|h):\d+\]\s*", "", line).split(". This is typically")[0]
    return line[:300]
