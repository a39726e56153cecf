"""Training: gradient descent on the mean cross-entropy, one short loop.

For every batch: ``zero_grad`` → forward (logits) → loss → ``backward`` (∇L) → clip the
gradient norm → ``step`` (θ ← θ − η∇L). ``StepLR`` shrinks η once per epoch. The
validation split picks the best epoch; the test split is never read here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .config import ModelConfig, TrainConfig
from .data import Split
from .errors import DivergedError
from .features import FeatureSpec, bag_weights, document_frequency, featurize, smooth_idf, unique
from .model import TextClassifier, clip_grad_norm, export_tensors
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
    """Everything derived from the train split that turns ids into model input."""

    spec: FeatureSpec
    idf: np.ndarray | None  # one value per feature, from train documents only
    n_train_docs: int

    def unseen_idf(self) -> float:
        return float(smooth_idf(np.zeros(1), self.n_train_docs)[0])

    def make_set(self, split: Split) -> FeatureSet:
        feats, offsets = featurize(split.ids, split.offsets, self.spec)
        weights = bag_weights(feats, offsets, None if self.idf is None else self.idf[feats])
        return FeatureSet(feats, offsets, weights, split.labels)


def fit_features(train: Split, vocab_size: int, cfg: ModelConfig) -> tuple[Features, FeatureSet]:
    spec = FeatureSpec(vocab_size, cfg.ngrams, cfg.buckets, cfg.weighting)
    idf = None
    feats, offsets = featurize(train.ids, train.offsets, spec)
    if cfg.weighting == "tfidf":
        idf = smooth_idf(document_frequency(feats, offsets, spec.num_features), len(train))
    features = Features(spec, idf, len(train))
    weights = bag_weights(feats, offsets, None if idf is None else idf[feats])
    return features, FeatureSet(feats, offsets, weights, train.labels)


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def batches(
    data: FeatureSet, batch_size: int, device: torch.device, order: np.ndarray | None = None
) -> Iterator[Batch]:
    """Consecutive batches of ``data`` (in ``order`` when given), as tensors on ``device``."""
    feats, offsets, weights, labels = data.feats, data.offsets, data.weights, data.labels
    if order is not None:
        index, offsets = take_rows(offsets, order)
        feats, weights, labels = feats[index], weights[index], labels[order]
    feats_t = torch.from_numpy(np.ascontiguousarray(feats, dtype=np.int64)).to(device)
    offsets_t = torch.from_numpy(np.ascontiguousarray(offsets, dtype=np.int64)).to(device)
    weights_t = torch.from_numpy(np.ascontiguousarray(weights, dtype=np.float32)).to(device)
    labels_t = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64)).to(device)
    for start in range(0, len(labels), batch_size):
        stop = min(start + batch_size, len(labels))
        lo, hi = offsets_t[start], offsets_t[stop]
        yield feats_t[lo:hi], offsets_t[start:stop] - lo, weights_t[lo:hi], labels_t[start:stop]


def train_epoch(
    model: TextClassifier, data: Iterator[Batch], optimizer: torch.optim.Optimizer, clip_norm: float
) -> float:
    """One pass of SGD; returns the sample-weighted mean training loss."""
    model.train()
    params = list(model.parameters())
    total, count = 0.0, 0
    for feats, offsets, weights, labels in data:
        optimizer.zero_grad()
        logits = model(feats, offsets, weights)
        # the batch mean of the cross-entropy is a Monte Carlo estimate of the expected loss
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        clip_grad_norm(params, clip_norm)
        optimizer.step()
        value = loss.item()
        if not math.isfinite(value):
            raise DivergedError(f"training diverged (loss {value}); try a lower train.lr")
        total += value * len(labels)
        count += len(labels)
    return total / max(count, 1)


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


def train_while_improving(
    model: TextClassifier,
    train_set: FeatureSet,
    val_set: FeatureSet,
    cfg: TrainConfig,
    device: torch.device,
    generator: np.random.Generator,
) -> Iterator[EpochResult]:
    """Run epochs, yielding each one's numbers; the caller keeps the best model."""
    import time

    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    best, since_best = -1.0, 0
    for epoch in range(1, cfg.epochs + 1):
        started = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        order = generator.permutation(len(train_set))
        train_loss = train_epoch(model, batches(train_set, cfg.batch_size, device, order), optimizer, cfg.clip_norm)
        val_loss, val_acc = evaluate_loss(model, batches(val_set, 4096, device))
        scheduler.step()
        is_best = val_acc > best
        if is_best:
            best, since_best = val_acc, 0
        else:
            since_best += 1
        yield EpochResult(epoch, lr, train_loss, val_loss, val_acc, time.perf_counter() - started, is_best)
        if cfg.patience and since_best >= cfg.patience:
            return


def snapshot(model: TextClassifier, spec: FeatureSpec, seen_buckets: np.ndarray) -> dict[str, np.ndarray]:
    return export_tensors(model, spec, seen_buckets)


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


def train(data_dir, out_dir, cfg, *, log=print, on_epoch=None) -> dict:
    """Train on prepared data; save the best epoch's model bundle and metrics in ``out_dir``.

    Returns a summary (best epoch, its validation numbers, timings).
    """
    import dataclasses
    import json
    import time
    from pathlib import Path

    from .bundle import save_bundle
    from .data import load_prepared
    from .fsutil import DirectoryLock, atomic_write_text, sha256_file

    out_dir = Path(out_dir)
    data = load_prepared(Path(data_dir), ("train", "validation"))
    device = resolve_device(cfg.train.device)
    torch.manual_seed(cfg.train.seed)
    init_gen = torch.Generator().manual_seed(cfg.train.seed)
    order_gen = np.random.default_rng(cfg.train.seed)

    started = time.perf_counter()
    features, train_set = fit_features(data.splits["train"], len(data.vocab), cfg.model)
    val_set = features.make_set(data.splits["validation"])
    spec = features.spec
    seen = unique(train_set.feats[train_set.feats >= spec.vocab_size]) - spec.vocab_size
    log(
        f"features: {len(train_set):,} train / {len(val_set):,} validation docs, vocabulary {spec.vocab_size:,}, "
        f"{len(seen):,} n-gram buckets seen, {time.perf_counter() - started:.1f}s; device {device}"
    )

    model = TextClassifier(spec.num_features, cfg.model.embed_dim, len(data.labels), sparse=device.type != "mps")
    model.init_weights(spec.vocab_size, init_gen)
    model.to(device)

    meta = {
        "labels": data.labels,
        "vocab": data.vocab.itos,
        "tokenizer": data.tokenizer,
        "features": {
            "ngrams": spec.ngrams,
            "buckets": spec.buckets,
            "weighting": spec.weighting,
            "kept_buckets": int(len(seen)),
            "unseen_idf": features.unseen_idf(),
            "n_train_docs": features.n_train_docs,
        },
        "model": dataclasses.asdict(cfg.model),
        "train": dataclasses.asdict(cfg.train),
        "prepare": data.manifest.get("config", {}).get("prepare"),
        "data": {
            "path": str(data.path.resolve()),
            "source": data.manifest.get("source"),
            "vocab_sha256": sha256_file(data.path / "vocab.json"),
            "rows": {s: v["rows"] for s, v in data.manifest["splits"].items()},
        },
    }
    idf_tensors = {}
    if features.idf is not None:
        idf_tensors = {"word_idf": features.idf[: spec.vocab_size], "ngram_idf": features.idf[spec.vocab_size + seen]}

    history: list[dict] = []
    best: dict | None = None
    with DirectoryLock(out_dir, "train"):
        for result in train_while_improving(model, train_set, val_set, cfg.train, device, order_gen):
            row = dataclasses.asdict(result)
            history.append(row)
            atomic_write_text(out_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))
            if result.is_best:
                best = row
                best_tensors = snapshot(model, spec, seen)
            if on_epoch is not None:
                on_epoch(result)
        assert best is not None
        meta["best"] = {k: best[k] for k in ("epoch", "val_loss", "val_accuracy")}
        save_bundle(out_dir, best_tensors | idf_tensors, meta)
    return {
        "best_epoch": best["epoch"],
        "val_accuracy": best["val_accuracy"],
        "val_loss": best["val_loss"],
        "epochs_run": len(history),
        "seconds": round(time.perf_counter() - started, 3),
        "out": str(out_dir),
    }
