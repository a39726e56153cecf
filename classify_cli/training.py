"""Training: gradient descent on the mean cross-entropy, one short loop.

For every batch: ``zero_grad`` → forward (logits) → loss → ``backward`` (∇L) → clip the
gradient norm → ``step`` (θ ← θ − η∇L). ``StepLR`` shrinks η once per epoch. The
validation split picks the best epoch; the test split is never read here.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .config import ModelConfig, TrainConfig
from .data import Split
from .errors import DivergedError
from .features import FeatureSpec, RowMap, bag_weights, document_frequency, featurize, smooth_idf
from .model import TextClassifier, clip_grad_norm
from .ragged import take_rows


@dataclass
class FeatureSet:
    """A split as the model reads it: feature ids, offsets, per-feature weights, labels."""

    feats: np.ndarray
    offsets: np.ndarray
    weights: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Features:
    """Everything derived from the train split that turns token ids into model input."""

    row_map: RowMap
    idf: np.ndarray | None  # one value per table row, from train documents only
    n_train_docs: int

    @property
    def spec(self) -> FeatureSpec:
        return self.row_map.spec

    def unseen_idf(self) -> float:
        return float(smooth_idf(np.zeros(1), self.n_train_docs)[0])

    def make_set(self, split: Split) -> FeatureSet:
        rows, offsets = self.row_map.rows(split.ids, split.offsets)
        weights = bag_weights(rows, offsets, None if self.idf is None else self.idf[rows])
        return FeatureSet(rows, offsets, weights, split.labels)


def fit_features(train: Split, vocab_size: int, cfg: ModelConfig) -> tuple[Features, FeatureSet]:
    """Learn from the train split which n-gram buckets occur and (for tfidf) each row's IDF."""
    spec = FeatureSpec(vocab_size, cfg.ngrams, cfg.buckets, cfg.weighting)
    feats, offsets = featurize(train.ids, train.offsets, spec)
    row_map = RowMap.fit(spec, feats)
    rows = row_map.to_rows(feats)
    idf = None
    if cfg.weighting == "tfidf":
        idf = smooth_idf(document_frequency(rows, offsets, row_map.num_rows), len(train))
        idf[row_map.unseen_row] = smooth_idf(np.zeros(1), len(train))[0]
    weights = bag_weights(rows, offsets, None if idf is None else idf[rows])
    return Features(row_map, idf, len(train)), FeatureSet(rows, offsets, weights, train.labels)


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def batches(
    data: FeatureSet, batch_size: int, device: torch.device, order: np.ndarray | None = None, start: int = 0
) -> Iterator[Batch]:
    """Batches of ``data`` (in ``order`` when given), as tensors on ``device``, from batch ``start`` on."""
    feats, offsets, weights, labels = data.feats, data.offsets, data.weights, data.labels
    if order is not None:
        index, offsets = take_rows(offsets, order)
        feats, weights, labels = feats[index], weights[index], labels[order]
    feats_t = torch.from_numpy(np.ascontiguousarray(feats, dtype=np.int64)).to(device)
    offsets_t = torch.from_numpy(np.ascontiguousarray(offsets, dtype=np.int64)).to(device)
    weights_t = torch.from_numpy(np.ascontiguousarray(weights, dtype=np.float32)).to(device)
    labels_t = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64)).to(device)
    for first in range(start * batch_size, len(labels), batch_size):
        stop = min(first + batch_size, len(labels))
        lo, hi = offsets_t[first], offsets_t[stop]
        yield feats_t[lo:hi], offsets_t[first:stop] - lo, weights_t[lo:hi], labels_t[first:stop]


def train_step(model: TextClassifier, batch: Batch, optimizer: torch.optim.Optimizer, clip_norm: float) -> float:
    """One step of gradient descent on one batch; returns the batch's mean loss."""
    feats, offsets, weights, labels = batch
    optimizer.zero_grad()
    logits = model(feats, offsets, weights)
    # the batch mean of the cross-entropy is a Monte Carlo estimate of the expected loss
    loss = F.cross_entropy(logits, labels)
    loss.backward()  # ∇L
    clip_grad_norm(list(model.parameters()), clip_norm)
    optimizer.step()  # θ ← θ − η∇L
    value = loss.item()
    if not math.isfinite(value):
        raise DivergedError(
            f"training diverged (loss {value}); lower train.lr (now {optimizer.param_groups[0]['lr']:g})"
        )
    return value


@torch.no_grad()
def evaluate_loss(model: TextClassifier, data: Iterator[Batch]) -> tuple[float, float]:
    """Mean cross-entropy and accuracy."""
    model.eval()
    total, correct, count = 0.0, 0, 0
    for feats, offsets, weights, labels in data:
        logits = model(feats, offsets, weights)
        total += F.cross_entropy(logits, labels, reduction="sum").item()
        correct += (logits.argmax(1) == labels).sum().item()
        count += len(labels)
    return total / max(count, 1), correct / max(count, 1)


@dataclass
class EpochResult:
    epoch: int
    lr: float
    train_loss: float
    val_loss: float
    val_accuracy: float
    seconds: float
    is_best: bool


@dataclass
class Progress:
    """Where training stands: with the weights, all a checkpoint needs to continue exactly."""

    epoch_rng: dict  # state of the shuffling generator at the start of ``epoch``
    epoch: int = 1  # the epoch in progress
    step: int = 0  # batches of it already done
    loss_sum: float = 0.0  # sample-weighted training loss of those batches
    seen: int = 0
    seconds: float = 0.0
    best_accuracy: float = -1.0
    since_best: int = 0
    history: list[dict] = field(default_factory=list)


class StopRequested(Exception):
    """Raised at a step boundary when the caller asked training to stop (Ctrl-C, SIGTERM)."""


def train_while_improving(
    model: TextClassifier,
    train_set: FeatureSet,
    val_set: FeatureSet,
    cfg: TrainConfig,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    progress: Progress,
    device: torch.device,
    should_stop: Callable[[], bool] = lambda: False,
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
        for batch in batches(train_set, cfg.batch_size, device, order, start=progress.step):
            loss = train_step(model, batch, optimizer, cfg.clip_norm)
            progress.loss_sum += loss * len(batch[3])
            progress.seen += len(batch[3])
            progress.step += 1
            if should_stop():
                progress.seconds = time.perf_counter() - started
                raise StopRequested
        lr = optimizer.param_groups[0]["lr"]
        val_loss, val_acc = evaluate_loss(model, batches(val_set, 4096, device))
        if not math.isfinite(val_loss):
            raise DivergedError(f"training diverged (validation loss {val_loss}); lower train.lr (now {lr:g})")
        scheduler.step()  # once per epoch
        is_best = val_acc > progress.best_accuracy
        progress.best_accuracy = max(progress.best_accuracy, val_acc)
        progress.since_best = 0 if is_best else progress.since_best + 1
        result = EpochResult(
            progress.epoch,
            lr,
            progress.loss_sum / max(progress.seen, 1),
            val_loss,
            val_acc,
            time.perf_counter() - started,
            is_best,
        )
        progress.history.append(dataclasses.asdict(result))
        progress.epoch, progress.step, progress.loss_sum, progress.seen, progress.seconds = (
            progress.epoch + 1,
            0,
            0.0,
            0,
            0.0,
        )
        progress.epoch_rng = generator.bit_generator.state
        yield result
        if cfg.patience and progress.since_best >= cfg.patience:
            return


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available, else CPU; ``cuda``/``mps`` must be available."""
    from .errors import InputError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available (use --device auto or cpu)")
    if name == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise InputError("--device mps: MPS is not available on this machine")
    if name not in ("cpu", "cuda", "mps"):
        raise InputError(f"unknown device {name!r} (auto, cpu, cuda or mps)")
    return torch.device(name)
