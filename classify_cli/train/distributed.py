"""One model trained by several processes under ``torchrun`` (``torch.distributed``).

Every rank holds the whole prepared data and an identical replica of the model. The same
seed gives every rank the same shuffled order, so every rank knows each step's *global*
batch; rank r takes documents r, r + N, r + 2N, ... of it. Each rank computes the gradient
of its documents' share of the batch's mean loss for the embedding rows the whole batch
touches (zero where its own documents miss a row), and one all-reduce (a sum) of those rows,
the linear layer's gradient, the loss and a stop flag gives every rank the gradient one
process would have computed on the whole batch. Every rank then clips and steps alike: the
replicas stay identical and weights never travel.

Per step that is one all-reduce of (rows the batch touches + classes) x embed_dim + 2
float32s; a ring all-reduce sends and receives about twice that on every rank.

Rank 0 owns the run directory (lock, checkpoint, bundle, metrics); the other ranks write
there nothing (only work files of their own) and learn what rank 0 decided (or why it
failed) through ``from_main``.

Every rank beats a heartbeat into the rendezvous store (a counter, every second, from a
thread). Where ranks may wait on one another for long (rank 0 saving a model, ranks building
features at different speeds) they meet in the store first and wait as long as the others'
hearts beat; so the collectives themselves are short, and a stopped or dead rank is given up
on after ``CLASSIFY_DIST_TIMEOUT`` seconds (default 60) and named.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from ..util.errors import EXIT_INTERNAL, ClassifyError, EnvironmentFailure, InputError
from .heartbeat import Heartbeat, LostContact, first_line, talking

if TYPE_CHECKING:
    import numpy as np
    import torch

T = TypeVar("T")

BACKENDS = ("auto", "gloo", "nccl")
TIMEOUT_ENV = "CLASSIFY_DIST_TIMEOUT"
# a rank whose heartbeat stops this long, or a collective that waits this long, ends the run;
# long solo work (rank 0 saving, a slow rank's features) waits on heartbeats, not on this
TIMEOUT_S = 60


class RankFailed(ClassifyError):
    """Another rank (rank 0) failed: this rank stops with its message and exit code."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class World:
    """This process's place among the ranks of one training run (1 rank: plain training)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str = "auto"
    heartbeat: Heartbeat | None = field(default=None, compare=False, repr=False)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def per_node(self) -> int:
        """Ranks on this machine (torchrun's LOCAL_WORLD_SIZE)."""
        return int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if self.size > 1 else 1

    def share_of(self, n: int) -> np.ndarray:
        """This rank's items of ``n`` (a batch's documents, the validation split): every
        ``size``-th one from ``rank``."""
        import numpy as np

        return np.arange(self.rank, n, self.size)

    def sum_(self, tensors: list[torch.Tensor], scalars: list[float]) -> list[float]:
        """Sum ``tensors`` (in place) and ``scalars`` over the ranks, in one all-reduce.

        Every rank gets the same bits (gloo's and NCCL's all-reduce send each reduced chunk to
        all), so decisions taken on the results (stop, diverged, best epoch) agree everywhere.
        """
        if self.size == 1:
            return scalars
        import torch
        import torch.distributed as dist

        like = tensors[0]
        flat = torch.cat([t.reshape(-1) for t in tensors] + [torch.tensor(scalars, dtype=like.dtype).to(like.device)])
        with talking():  # NCCL reports a failure when the result is used, so that is in here too
            dist.all_reduce(flat)
            at = 0
            for t in tensors:
                t.copy_(flat[at : at + t.numel()].view_as(t))
                at += t.numel()
            return flat[at:].tolist()

    def sum_values(self, values: list[float]) -> list[float]:
        """``values`` summed over the ranks, in float64."""
        if self.size == 1:
            return values
        import torch
        import torch.distributed as dist

        total = torch.tensor(values, dtype=torch.float64)
        with talking():
            dist.all_reduce(total)
        return total.tolist()

    def broadcast_(self, tensors: list[torch.Tensor]) -> None:
        """Rank 0's values of ``tensors`` on every rank (in place)."""
        if self.size == 1:
            return
        import torch.distributed as dist

        with talking():
            for t in tensors:
                dist.broadcast(t, 0)

    def share(self, message: Any = None) -> Any:
        """Rank 0's JSON-able ``message`` on every rank (the others pass nothing)."""
        if self.size == 1:
            return message
        import torch
        import torch.distributed as dist

        data = json.dumps(message).encode() if self.is_main else b""
        length = torch.tensor([len(data)], dtype=torch.int64)
        with talking():
            dist.broadcast(length, 0)
            buffer = torch.frombuffer(bytearray(data), dtype=torch.uint8) if self.is_main else None
            if buffer is None:
                buffer = torch.empty(int(length), dtype=torch.uint8)
            dist.broadcast(buffer, 0)
        return json.loads(bytes(buffer.numpy()))

    def from_main(self, fn: Callable[[], T]) -> T:
        """``fn()`` run on rank 0; its (JSON-able) result, or its failure, on every rank."""
        if self.size == 1:
            return fn()
        if not self.is_main:
            self._meet([0])  # however long rank 0's work takes, while its heart beats
            message = self.share()
            if "error" in message:
                raise RankFailed(f"rank 0 failed: {message['error']}", message["exit_code"])
            return message["result"]
        try:
            result = json.loads(json.dumps(fn()))  # what the other ranks get, on rank 0 too
        except ClassifyError as exc:
            self._meet([])
            self.share({"error": str(exc), "exit_code": exc.exit_code})
            raise
        except LostContact:
            raise
        except BaseException as exc:
            self._meet([])
            self.share({"error": f"unexpected {type(exc).__name__}: {exc}", "exit_code": EXIT_INTERNAL})
            raise
        try:
            self._meet([])
            self.share({"result": result})
        except LostContact as exc:  # rank 0's work (a saved model, a checkpoint) stands
            print(f"warning: rank 0 could not tell the other ranks it is done: {exc}", file=sys.stderr)
        return result

    def together(self, fn: Callable[[], T]) -> T:
        """``fn()`` on every rank; where it fails on any rank, every rank stops: that rank with
        its own error, the others naming it (no rank is left waiting for the rest)."""
        if self.size == 1:
            return fn()
        import torch
        import torch.distributed as dist

        try:
            result, error = fn(), None
        except Exception as exc:  # noqa: BLE001 (told to the others, then raised as it was)
            result, error = None, exc
        code = 0 if error is None else getattr(error, "exit_code", EXIT_INTERNAL)
        codes = [torch.zeros(1, dtype=torch.int64) for _ in range(self.size)]
        self._meet([r for r in range(self.size) if r != self.rank])  # the slowest rank's work may be long
        with talking():
            dist.all_gather(codes, torch.tensor([code], dtype=torch.int64))
        if error is not None:
            raise error
        failed = [(r, int(c)) for r, c in enumerate(codes) if int(c)]
        if failed:
            ranks = ", ".join(str(r) for r, _ in failed)
            raise RankFailed(f"rank {ranks} failed (see its own error line)", failed[0][1])
        return result

    def _meet(self, waiting_for: list[int]) -> None:
        if self.heartbeat is not None:
            self.heartbeat.meet(waiting_for)

    def check_same(self, **what: str) -> None:
        """Refuse to train unless every rank holds the same ``what`` (config, data, ...) as rank 0."""
        if self.size == 1:
            return
        import torch
        import torch.distributed as dist

        names = sorted(what)
        mine = torch.tensor(
            [list(hashlib.sha256(what[n].encode()).digest()[:8]) for n in names], dtype=torch.int64
        ).reshape(-1)
        every = [torch.empty_like(mine) for _ in range(self.size)]
        with talking():
            dist.all_gather(every, mine)
        differ = {
            name: [
                r
                for r in range(1, self.size)
                if not torch.equal(every[r][i * 8 : i * 8 + 8], every[0][i * 8 : i * 8 + 8])
            ]
            for i, name in enumerate(names)
        }
        differ = {name: ranks for name, ranks in differ.items() if ranks}
        if differ:
            said = "; ".join(
                f"the {name} on rank {', '.join(map(str, r))} differs from rank 0's" for name, r in differ.items()
            )
            raise InputError(f"the ranks disagree: {said} (every rank needs the same data, config and software)")


SINGLE = World()


def train_command(world: World) -> str:
    """How to start ``classify train`` with this world's number of ranks."""
    if world.size == 1:
        return "classify train"
    return f"torchrun ({world.size} ranks in all, e.g. --nproc-per-node {world.size}) -m classify_cli train"


def world_size_from_env() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise InputError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number of ranks") from None


@contextlib.contextmanager
def joined(backend: str = "auto") -> Iterator[World]:
    """The world this process trains in: under ``torchrun`` (``WORLD_SIZE`` > 1) it joins the
    process group for the duration (gloo for CPU tensors, NCCL for CUDA ones unless ``backend``
    says gloo); otherwise it is the one-rank world and nothing is set up."""
    size = world_size_from_env()
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r} ({', '.join(BACKENDS)})")
    if size <= 1:
        if backend == "nccl":
            raise InputError("--backend nccl is for training under torchrun with several ranks")
        yield SINGLE
        return
    import torch
    import torch.distributed as dist

    try:
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    except (KeyError, ValueError):
        raise InputError(
            f"WORLD_SIZE={size} but no valid RANK: start several ranks with torchrun (or unset WORLD_SIZE)"
        ) from None
    try:
        has_nccl = torch.cuda.is_available() and dist.is_nccl_available()
        if backend == "nccl" and not has_nccl:
            raise InputError("--backend nccl: this machine has no CUDA device with NCCL (on CPU, use gloo or auto)")
        # the small messages (plans, checks) always go through gloo, on CPU tensors
        spec = "cpu:gloo,cuda:nccl" if has_nccl and backend != "gloo" else "gloo"
        try:
            timeout = float(os.environ.get(TIMEOUT_ENV, TIMEOUT_S))
        except ValueError:
            raise InputError(f"{TIMEOUT_ENV} must be a number of seconds") from None
        try:
            dist.init_process_group(spec, timeout=timedelta(seconds=timeout))
        except (RuntimeError, ValueError) as exc:
            raise EnvironmentFailure(f"could not join the other ranks: {first_line(exc)}") from None
        heartbeat = Heartbeat(dist.distributed_c10d._get_default_store(), rank, size, timeout)
        intact = True
        try:
            yield World(rank, size, local_rank, backend, heartbeat)
        except LostContact as exc:
            intact = False
            raise EnvironmentFailure(_lost(exc, heartbeat.silent(), timeout)) from None
        finally:
            if intact:
                # every rank done talking before any closes its connections: a rank that tore
                # down gloo while rank 0 was finishing died now and then with SIGABRT
                try:
                    with talking():
                        dist.barrier()
                except LostContact:
                    intact = False
            heartbeat.stop(wait=intact)
            # with a peer dead or stopped, gloo's teardown aborts the process (SIGABRT,
            # "terminate called without an active exception"): the group is left up and the
            # CLI ends the process without tearing it down (cli.main)
            if intact:
                with contextlib.suppress(Exception):
                    dist.destroy_process_group()
    except ClassifyError as exc:
        exc.args = (f"rank {rank}/{size}: {exc}",)  # every rank says its own line
        raise


def _lost(exc: LostContact, silent: list[int], timeout: float) -> str:
    """What a rank that lost the others says: who went quiet, if it can tell, and the rule."""
    who = f"rank {', '.join(map(str, silent))} stopped or died" if silent else "another rank stopped or died"
    return f"lost contact with the other ranks: {who} ({exc}; a silent rank is given up on after {timeout:g} s, {TIMEOUT_ENV})"


def left_up() -> bool:
    """Whether this process still belongs to a world that was not torn down (a peer died)."""
    dist = sys.modules.get("torch.distributed")
    return dist is not None and dist.is_available() and dist.is_initialized()
