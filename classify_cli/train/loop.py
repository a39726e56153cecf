"""Training: gradient descent on the mean of the task's loss (cross-entropy), one short loop.

For every batch: ``zero_grad`` → forward (logits) → loss → ``backward`` (∇L) → clip the
gradient norm → ``step`` (θ ← θ − η∇L). ``StepLR`` shrinks η once per epoch. The
validation split picks the best epoch, as the task says (``Task.selection``: the lowest
validation loss for one label per text, the highest micro-F1 for a set of labels). The test
split is never read here.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch

from ..data.spill import drop_resident
from ..model.feature_sets import FeatureSet
from ..model.task import Task
from ..util.config import TrainConfig
from ..util.errors import DivergedError
from ..util.ragged import take_rows
from .distributed import SINGLE, World
from .net import Grouping, TextClassifier, clip_grad_norm

# batch_size = "auto": the batch grows with the corpus, so a large corpus takes fewer,
# cheaper steps (a step's fixed cost dominates at small batches), and the learning rate grows
# in proportion (the linear scaling rule) up to batch 256: at 512 it stays at 256's, which
# scored higher on validation than 512's own on all four corpora tried (80k to 1M documents,
# docs/benchmarks.md), in as many epochs
BASE_BATCH = 64
AUTO_BATCHES = ((16_000, 64), (32_000, 128), (64_000, 256))
AUTO_BATCH_MAX = 512
AUTO_LR_BATCH_MAX = 256  # the batch whose rate larger ones keep


def resolve_batch(cfg: TrainConfig, n_train_docs: int) -> TrainConfig:
    """``cfg`` with a number for ``batch_size`` (and the lr that goes with it)."""
    if cfg.batch_size != "auto":
        return cfg
    batch = next((b for limit, b in AUTO_BATCHES if n_train_docs < limit), AUTO_BATCH_MAX)
    return dataclasses.replace(cfg, batch_size=batch, lr=cfg.lr * min(batch, AUTO_LR_BATCH_MAX) / BASE_BATCH)


AUTO_DIM, AUTO_DIM_MIN = 64, 16
AUTO_TABLE_BYTES = 128 << 20


def resolve_embed_dim(embed_dim: int | str, num_rows: int) -> int:
    """``embed_dim``, or for "auto" 64 halved while ``num_rows`` float32 rows would pass 128 MiB
    (down to 16): memory and epoch time then stop growing with the vocabulary as fast."""
    if embed_dim != "auto":
        return int(embed_dim)
    dim = AUTO_DIM
    while dim > AUTO_DIM_MIN and num_rows * dim * 4 > AUTO_TABLE_BYTES:
        dim //= 2
    return dim


class Batch(NamedTuple):
    feats: torch.Tensor  # table rows of every document's features, end to end
    offsets: torch.Tensor  # where each document starts in ``feats``
    weights: torch.Tensor  # per-feature weights of each document's bag
    labels: torch.Tensor  # class indices, or 0/1 per label (float) for a set of labels
    grouping: Grouping | None  # the occurrences by table row, for the backward pass (training only)


def group_by_row(rows: np.ndarray, bags: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, ...]:
    """The arrays of a ``Grouping``: distinct rows (sorted), where each one's occurrences
    start, and the document and weight of every occurrence in that order."""
    # torch's stable sort: deterministic, and on CPU a third of the time of numpy's argsort,
    # which took a third of a training epoch
    ordered, order = (t.numpy() for t in torch.sort(torch.from_numpy(rows), stable=True))
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    return ordered[starts], starts, bags[order], weights[order]


def batches(
    data: FeatureSet,
    batch_size: int,
    device: torch.device,
    order: np.ndarray | None = None,
    start: int = 0,
    *,
    for_training: bool = False,
    world: World = SINGLE,
) -> Iterator[Batch]:
    """Batches of ``data`` (in ``order`` when given), as tensors on ``device``, from batch ``start`` on.

    ``for_training`` adds each batch's ``Grouping`` for the backward pass; with several ranks
    each batch is this rank's share of the global batch (see ``distributed.py``).
    """
    order = np.arange(len(data)) if order is None else order

    def tensor(array: np.ndarray, dtype) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=dtype)).to(device)

    for first in range(start * batch_size, len(order), batch_size):
        docs = order[first : first + batch_size]
        # gathered batch by batch: small arrays stay in cache (a whole shuffled epoch would not)
        rows, offsets = data.gather(docs)
        weights = data.weights(rows, docs, offsets)
        grouping = None
        if for_training and len(rows):
            bags = np.repeat(np.arange(len(docs)), np.diff(offsets))
            grouped = group_by_row(rows, bags, weights)
            if world.size > 1:
                docs, rows, offsets, weights, grouped = _share_of(docs, rows, offsets, weights, grouped, world)
            distinct, starts, bag_order, weight_order = grouped
            grouping = Grouping(
                tensor(distinct, np.int64),
                tensor(starts, np.int64),
                tensor(bag_order, np.int64),
                tensor(weight_order, np.float32),
            )
        elif for_training and world.size > 1:
            docs = docs[world.share_of(len(docs))]
            rows, offsets, weights = rows[:0], np.zeros(len(docs) + 1, np.int64), weights[:0]
        yield Batch(
            tensor(rows, np.int64),
            tensor(offsets[:-1], np.int64),
            tensor(weights, np.float32),
            tensor(data.labels[docs], np.float32 if data.labels.ndim == 2 else np.int64),
            grouping,
        )


def _share_of(docs, rows, offsets, weights, grouped, world: World):
    """This rank's documents of a global batch (every ``world.size``-th one from ``world.rank``),
    and their occurrences still grouped by the *global* batch's rows: a row none of them uses
    keeps an empty group, so every rank's gradient has the same rows, ready to be summed."""
    distinct, starts, bag_order, weight_order = grouped
    mine = world.share_of(len(docs))
    index, my_offsets = take_rows(offsets, mine)
    keep = bag_order % world.size == world.rank
    group = np.repeat(np.arange(len(distinct)), np.diff(np.append(starts, len(bag_order))))
    my_starts = np.searchsorted(group[keep], np.arange(len(distinct)))
    return (
        docs[mine],
        rows[index],
        my_offsets,
        weights[index],
        (distinct, my_starts, bag_order[keep] // world.size, weight_order[keep]),
    )


def train_step(
    model: TextClassifier,
    batch: Batch,
    optimizer: torch.optim.Optimizer,
    clip_norm: float,
    world: World = SINGLE,
    batch_docs: int = 0,
    stop: bool = False,
    *,
    task: Task,  # what the loss is: every caller says, so none trains another task by default
) -> tuple[float, bool]:
    """One step of gradient descent on one batch; returns the batch's mean loss, and whether
    any rank asked to stop (``stop`` is this rank's wish)."""
    optimizer.zero_grad()
    if world.size == 1:
        logits = model(batch.feats, batch.offsets, batch.weights, batch.grouping)
        # the batch mean of the loss is a Monte Carlo estimate of the expected loss
        loss = task.loss(logits, batch.labels)
        loss.backward()  # ∇L
        value = loss.item()
    else:
        if batch_docs < 1:
            raise ValueError("with several ranks, train_step needs the global batch's size (batch_docs)")
        value, stop = _distributed_backward(model, batch, world, batch_docs, stop, task)
    model.flag_row_summed_gradient(batch.grouping)
    clip_grad_norm(list(model.parameters()), clip_norm)
    optimizer.step()  # θ ← θ − η∇L
    if not math.isfinite(value):
        raise DivergedError(
            f"training diverged (loss {value}); lower train.lr (now {optimizer.param_groups[0]['lr']:g})"
        )
    return value, stop


def _distributed_backward(
    model: TextClassifier, batch: Batch, world: World, batch_docs: int, stop: bool, task: Task
) -> tuple[float, bool]:
    """∇L of the global batch on every rank: each rank's documents' share of the batch mean
    (their summed loss over the whole batch's size), then summed over the ranks."""
    if len(batch.labels):
        logits = model(batch.feats, batch.offsets, batch.weights, batch.grouping)
        loss = task.loss(logits, batch.labels, reduction="sum") / batch_docs
        loss.backward()
        mine = loss.item()
    else:  # fewer documents left in the batch than ranks: this rank adds zeros
        mine = 0.0
    table, fc = model.embedding.weight, model.fc.weight
    if fc.grad is None:
        fc.grad = torch.zeros_like(fc)
    if table.grad is None:
        rows = (
            batch.grouping.rows
            if batch.grouping is not None
            else torch.zeros(0, dtype=torch.int64, device=table.device)
        )
        values = torch.zeros(len(rows), table.shape[1], dtype=table.dtype, device=table.device)
        table.grad = torch.sparse_coo_tensor(rows.unsqueeze(0), values, table.shape, is_coalesced=True)
    grad = table.grad._values() if table.grad.is_sparse else table.grad
    total, stops = world.sum_([grad, fc.grad], [mine, float(stop)])
    return total, stops > 0


@torch.no_grad()
def evaluate_loss(
    model: TextClassifier, data: Iterator[Batch], world: World = SINGLE, *, task: Task
) -> tuple[float, float]:
    """Mean loss and the task's score, e.g. accuracy (of every rank's share of the data together)."""
    model.eval()
    total, tally, count = 0.0, np.zeros(task.tally_size), 0
    for feats, offsets, weights, labels, *_ in data:
        logits = model(feats, offsets, weights)
        total += task.loss(logits, labels, reduction="sum").item()
        tally = tally + task.tally(logits, labels).cpu().double().numpy()
        count += len(labels)
    if world.size > 1:
        total, count, *tally = world.sum_values([total, count, *tally.tolist()])
    return total / max(count, 1), task.score(list(tally), count)


@dataclass
class EpochResult:
    epoch: int
    lr: float
    train_loss: float
    val_loss: float
    val_score: float  # the task's: accuracy, or micro-F1 (in metrics.jsonl under ``Task.score_name``)
    seconds: float
    is_best: bool
    score_name: str = "val_accuracy"  # what ``val_score`` is (``Task.score_name``)


@dataclass
class RunState:
    """Where training stands: with the weights, all a checkpoint needs to continue exactly."""

    epoch_rng: dict  # state of the shuffling generator at the start of ``epoch``
    epoch: int = 1  # the epoch in progress
    step: int = 0  # batches of it already done
    loss_sum: float = 0.0  # sample-weighted training loss of those batches
    seen: int = 0
    seconds: float = 0.0
    best_loss: float | None = None  # lowest ``Task.selection`` so far (None before the first epoch)
    since_best: int = 0
    history: list[dict] = field(default_factory=list)


RELEASE_STEPS = 64  # steps between letting go of the mapped token ids' pages (each time: a few % of an epoch)
EXPLODED = 10  # a validation loss this many times a uniform guess's is no model: training diverged


class StopRequested(Exception):
    """Raised at a step boundary when the caller asked training to stop (Ctrl-C, SIGTERM)."""


def train_while_improving(
    model: TextClassifier,
    train_set: FeatureSet,
    val_set: FeatureSet,
    cfg: TrainConfig,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    progress: RunState,
    device: torch.device,
    should_stop: Callable[[], bool] = lambda: False,
    on_step: Callable[[int, int, int], None] = lambda epoch, step, steps: None,
    world: World = SINGLE,
    *,
    task: Task,
) -> Iterator[EpochResult]:
    """Run the remaining epochs, yielding each one's numbers; the caller keeps the best model.

    ``progress`` is updated after every step, so when ``should_stop()`` turns true the
    ``StopRequested`` raised at the next step boundary leaves model, optimizer, scheduler
    and ``progress`` consistent for a checkpoint.
    """
    generator = np.random.default_rng()
    while progress.epoch <= cfg.epochs:
        started = time.perf_counter() - progress.seconds
        generator.bit_generator.state = progress.epoch_rng
        order = generator.permutation(len(train_set))
        steps = -(-len(train_set) // cfg.batch_size)
        on_step(progress.epoch, progress.step, steps)  # (epoch, steps done, steps in the epoch)
        shared = batches(train_set, cfg.batch_size, device, order, progress.step, for_training=True, world=world)
        for batch in shared:
            batch_docs = min(cfg.batch_size, len(order) - progress.step * cfg.batch_size)
            loss, stop = train_step(model, batch, optimizer, cfg.clip_norm, world, batch_docs, should_stop(), task=task)
            progress.loss_sum += loss * batch_docs
            progress.seen += batch_docs
            progress.step += 1
            if progress.step % RELEASE_STEPS == 0:  # memory-mapped token ids: keep a window resident
                drop_resident(train_set.values)
            on_step(progress.epoch, progress.step, steps)
            if stop:
                progress.seconds = time.perf_counter() - started
                raise StopRequested
        lr = optimizer.param_groups[0]["lr"]
        val_loss, val_score = evaluate_loss(
            model, batches(val_set, 4096, device, world.share_of(len(val_set))), world, task=task
        )
        uniform = task.guess_loss(model.fc.out_features)  # the loss of guessing every class alike
        if not math.isfinite(val_loss) or val_loss > EXPLODED * uniform:
            raise DivergedError(
                f"training diverged (validation loss {val_loss:.4g}, over {EXPLODED}x the {uniform:.3f} of a "
                f"uniform guess); lower train.lr (now {lr:g})"
            )
        with warnings.catch_warnings():
            # a run resumed at an epoch's very end steps the scheduler before this process's
            # first optimizer step; the order is right, and torch's warning would say otherwise
            warnings.filterwarnings("ignore", r"Detected call of `lr_scheduler\.step\(\)` before")
            scheduler.step()  # once per epoch
        chosen_by = task.selection(val_loss, val_score)
        is_best = progress.best_loss is None or chosen_by < progress.best_loss
        if is_best:
            progress.best_loss = chosen_by
        progress.since_best = 0 if is_best else progress.since_best + 1
        result = EpochResult(
            progress.epoch,
            lr,
            progress.loss_sum / max(progress.seen, 1),
            val_loss,
            val_score,
            time.perf_counter() - started,
            is_best,
            task.score_name,
        )
        # the score under the task's name, in its place
        progress.history.append(
            {
                task.score_name if k == "val_score" else k: v
                for k, v in dataclasses.asdict(result).items()
                if k != "score_name"
            }
        )
        progress.epoch, progress.step, progress.loss_sum, progress.seen, progress.seconds = (
            progress.epoch + 1,
            0,
            0.0,
            0,
            0.0,
        )
        progress.epoch_rng = generator.bit_generator.state
        yield result
        if cfg.patience and progress.since_best >= cfg.patience and len(val_set) >= STOPS_EARLY_FROM:
            return


# a validation split of fewer documents cannot tell one epoch from the next (a document is over
# 0.3% of accuracy): every epoch runs, and the best is kept. On a 300-document AG News subset
# (16 validation documents) with vectors, patience 2 kept epoch 2 of 4: 0.712 accuracy on other
# train documents, against 0.807 with every epoch run (docs/benchmarks.md)
STOPS_EARLY_FROM = 300


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available, else CPU; ``cuda``/``mps`` must be available."""
    from ..util.errors import InputError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available (use --device auto or cpu)")
    if name == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise InputError("--device mps: MPS is not available on this machine")
    if name not in ("cpu", "cuda", "mps"):
        raise InputError(f"unknown device {name!r} (auto, cpu, cuda or mps)")
    return torch.device(name)
