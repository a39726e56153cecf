"""Map a function over batches in forked worker processes, in order, with bounded memory.

Tokenizing and parsing are pure Python and hold the GIL, so processes are what uses more
than one core. Workers are forked: the shared state (a model, a parser) is inherited, not
pickled. At most two batches per worker are in flight, whatever the input size; an input of
a single batch runs here without starting workers. A worker that dies (the OOM killer,
SIGKILL, SIGBUS) ends the command with one error within moments: ``concurrent.futures``
notices a dead worker, where ``multiprocessing.Pool`` replaces it and waits forever for its batch.
"""

from __future__ import annotations

import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import Any, TypeVar

from .errors import EnvironmentFailure

T = TypeVar("T")
R = TypeVar("R")

_worker: tuple[Callable[[Any, Any], Any], Any] | None = None  # (fn, state), set once per worker process


def _start(fn: Callable[[Any, Any], Any], state: Any) -> None:
    global _worker
    _worker = (fn, state)
    # SIGTERM must end a worker quietly, not raise KeyboardInterrupt as the command's own handler
    # would; Ctrl-C (sent to the whole process group) is the command's to handle: it stops the pool
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _call(item: Any) -> Any:
    assert _worker is not None
    fn, state = _worker
    return fn(state, item)


BATCH_CHARS = 1 << 22  # a batch closes at this many characters, whatever its count


def batches(items: Iterable[T], size: int, chars: Callable[[T], int] = len) -> Iterator[list[T]]:
    """Lists of at most ``size`` items, each closed once it holds ``BATCH_CHARS`` characters:
    with lines of up to 16M characters, a count alone would not bound a batch's memory."""
    batch: list[T] = []
    held = 0
    for item in items:
        batch.append(item)
        held += chars(item)
        if len(batch) >= size or held >= BATCH_CHARS:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


def default_workers() -> int:
    return min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 4)


def parallel_map(
    fn: Callable[[Any, T], R], state: Any, items: Iterable[T], workers: int | None = None
) -> Iterator[tuple[T, R]]:
    """Each item with ``fn(state, item)``, in input order."""
    workers = default_workers() if workers is None else workers
    it = iter(items)
    head = [x for x in (next(it, _END), next(it, _END)) if x is not _END]
    if len(head) < 2 or workers <= 1 or not _can_fork():
        for item in chain(head, it):
            yield item, fn(state, item)
        return
    import multiprocessing  # here: `predict TEXT` starts no pool, and imports none of it
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(workers, multiprocessing.get_context("fork"), initializer=_start, initargs=(fn, state))
    try:
        pending: deque = deque()
        for item in chain(head, it):
            pending.append((item, pool.submit(_call, item)))
            if len(pending) >= 2 * workers:
                done, result = pending.popleft()
                yield done, result.result()
        while pending:
            done, result = pending.popleft()
            yield done, result.result()
    except BrokenProcessPool:
        raise EnvironmentFailure(
            "a worker process died (killed by the system: out of memory?); the command stopped there"
        ) from None
    finally:
        # on an error or an early stop, batches not yet started are dropped, not worked through
        pool.shutdown(wait=True, cancel_futures=True)


_END = object()


def _can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()
