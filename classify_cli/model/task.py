"""The task a model answers, owned in one place: one label per text (``SingleLabel``: softmax
and cross-entropy) or a set of labels per text (``MultiLabel``: a sigmoid and a binary
cross-entropy per label, and a threshold chosen on validation).

A task says how logits become probabilities and what the training loss is, how a label is
decided, what record a prediction yields, and which metrics judge it. The trainer, evaluate,
predict, tune, compress and the API ask the model's task (``task_of``) rather than knowing
these, and model.json records it (with a set of labels, also its ``decision``: the threshold).
How prepared data stores either task's labels is ``data/labels.py``'s.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..util.floats import pairwise_sum
from .metrics import (
    METRICS,
    SET_METRICS,
    SET_TUNABLE,
    TUNABLE,
    Metric,
    Outcome,
    SetOutcome,
    best_threshold,
    classification_report,
    set_report,
    text_log_losses,
)

if TYPE_CHECKING:  # numpy and torch where they are used: `--help` and predict import this
    import numpy as np
    import torch

NO_KNOWN_TOKENS = "no known tokens"


@dataclass
class Decision:
    """A batch's decisions, column by column."""

    tops: np.ndarray  # (n, k) label indices, most likely first
    top_probs: np.ndarray  # (n, k) their probabilities, rounded to 6 digits
    abstained: list[str | None]  # why a text gets no label, or None
    # a set of labels per text: (label index, probability) of those it gets, most likely first
    chosen: list[list[tuple[int, float]]] | None = None


class Task(Protocol):
    name: str
    metrics: dict[str, Metric]  # the numbers that judge it (for single_label: metrics.METRICS)
    tunable: tuple[str, ...]  # what tune may optimize
    main_metric: str  # what --fail-under VALUE, tune and compress judge by
    shift_invariant: bool  # whether adding one number to every logit changes nothing (softmax)
    step_scale: float  # train.lr times this is the step size
    score_name: str  # the validation number of each epoch (metrics.jsonl, model.json's best)
    tally_size: int  # the length of a ``tally``

    def probabilities(self, logits: np.ndarray) -> np.ndarray: ...
    def loss(self, logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor: ...
    # counts over batches (and ranks: they are summed) that ``score`` turns into the epoch's number
    def tally(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor: ...
    def score(self, tally: Sequence[float], count: int) -> float: ...
    def selection(self, val_loss: float, val_score: float) -> float: ...  # lowest: the best epoch
    def guess_loss(self, n_classes: int) -> float: ...
    def initial_bias(self, labels: np.ndarray, n_classes: int) -> np.ndarray: ...

    logit_shift: float  # what the saved model's bias drops (the loss's pos_weight)

    def decide(self, probs: np.ndarray, known: np.ndarray, k: int, min_confidence: float) -> Decision: ...
    # the same two for one text in plain Python (predict TEXT without numpy), numpy's numbers
    def plain_probabilities(self, logits: Sequence[float]) -> list[float]: ...
    def plain_decide(self, probs: list[float], known: int, k: int, min_confidence: float) -> tuple: ...
    def record(
        self, labels: list[str], top: list[int], probs: list[float], why: str | None, chosen: list | None = None
    ) -> dict[str, Any]: ...
    def report(self, probs: np.ndarray, truth: np.ndarray, labels: list[str]) -> dict[str, Any]: ...
    def scores(self, probs: np.ndarray, truth: np.ndarray, n_classes: int) -> dict[str, Any]: ...


class SingleLabel:
    """One label per text: softmax over the classes, cross-entropy against the true one (the
    mean over a batch estimates the expected loss), argmax to decide."""

    name = "single_label"
    metrics = METRICS
    tunable = TUNABLE
    main_metric = "accuracy"
    shift_invariant = True
    step_scale = 1.0
    score_name = "val_accuracy"
    tally_size = 1

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        import numpy as np

        logits = logits.astype(np.float64)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))  # shifted: exp never overflows
        return exp / exp.sum(axis=1, keepdims=True)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        import torch.nn.functional as F  # the trainer's alone: predict never imports torch

        return F.cross_entropy(logits, targets, reduction=reduction)  # log-softmax and NLL in one

    def tally(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """How many documents the logits label right."""
        return (logits.argmax(1) == targets).sum().reshape(1)

    def score(self, tally: Sequence[float], count: int) -> float:
        return tally[0] / max(count, 1)  # accuracy

    def selection(self, val_loss: float, val_score: float) -> float:
        # on a small validation split accuracy moves in coarse steps and ties; the loss does neither
        return val_loss

    def guess_loss(self, n_classes: int) -> float:
        """The loss of a model that knows nothing, every class alike: ln C."""
        return math.log(n_classes)

    logit_shift = 0.0  # what the trained bias drops (MultiLabel's pos_weight)

    def initial_bias(self, labels: np.ndarray, n_classes: int) -> np.ndarray:
        """The log class prior of the train split, add-one smoothed."""
        import numpy as np

        counts = np.bincount(labels, minlength=n_classes)
        return np.log((counts + 1) / (counts.sum() + n_classes))

    def decide(self, probs: np.ndarray, known: np.ndarray, k: int, min_confidence: float) -> Decision:
        """The ``k`` most likely labels of each text; a text whose best is below
        ``min_confidence``, or that has no token the model knows, abstains."""
        import numpy as np

        tops = np.argsort(-probs, axis=1, kind="stable")[:, : max(1, min(k, probs.shape[1]))]
        top_probs = np.round(np.take_along_axis(probs, tops, axis=1), 6)
        below = f"confidence below {min_confidence:g}"
        abstained = [
            NO_KNOWN_TOKENS if n == 0 else below if best < min_confidence else None
            for n, best in zip(known.tolist(), top_probs[:, 0].tolist(), strict=True)
        ]
        return Decision(tops, top_probs, abstained)

    def plain_probabilities(self, logits: Sequence[float]) -> list[float]:
        """``probabilities`` of one text: the same shift, and the sum in numpy's order."""
        top = max(logits)
        exp = [math.exp(x - top) for x in logits]
        total = pairwise_sum(exp, float)
        return [e / total for e in exp]

    def plain_decide(
        self, probs: list[float], known: int, k: int, min_confidence: float
    ) -> tuple[list[int], list[float], str | None, None]:
        """``decide`` for one text: the top indices (a stable sort, as numpy's), their
        probabilities rounded as ``np.round(p, 6)`` (the same multiply, half-to-even, divide), why
        it abstains."""
        top = sorted(range(len(probs)), key=lambda j: -probs[j])[: max(1, min(k, len(probs)))]
        top_probs = [round(probs[j] * 1e6) / 1e6 for j in top]
        why = NO_KNOWN_TOKENS if known == 0 else None
        if why is None and top_probs[0] < min_confidence:
            why = f"confidence below {min_confidence:g}"
        return top, top_probs, why, None

    def record(
        self, labels: list[str], top: list[int], probs: list[float], why: str | None, chosen: list | None = None
    ) -> dict[str, Any]:
        """One text's prediction: ``label`` (None where it abstains, and ``abstained`` says
        why), its ``probability``, and the ``top`` labels with theirs."""
        record = {
            "label": labels[top[0]] if why is None else None,
            "probability": probs[0],
            "top": [{"label": labels[j], "probability": p} for j, p in zip(top, probs, strict=True)],
        }
        if why is not None:
            record["abstained"] = why
        return record

    def report(self, probs: np.ndarray, truth: np.ndarray, labels: list[str]) -> dict[str, Any]:
        """evaluate's numbers: every metric, per class, the confusion matrix."""
        return classification_report(probs, truth, labels)

    def scores(self, probs: np.ndarray, truth: np.ndarray, n_classes: int) -> dict[str, Any]:
        """tune's numbers for a trial: each tunable metric, and under ``per_doc`` each
        document's part (to compare two trials document by document): right or not (accuracy,
        and macro F1's nearest per-document stand-in) and its loss."""
        import numpy as np

        outcome = Outcome.of(probs, truth, n_classes)
        scores: dict[str, Any] = {name: METRICS[name].fn(outcome) for name in TUNABLE}
        docs = np.arange(len(truth))
        correct = (probs.argmax(axis=1) == truth).astype(np.float64) if len(docs) else np.zeros(0)
        scores["per_doc"] = {
            "accuracy": correct,
            "macro_f1": correct,
            "loss": -np.log(np.maximum(probs[docs, truth], 1e-15)),
        }
        return scores


HISTOGRAM_BINS = 200  # probability bins of the epoch's micro-F1: thresholds 0.005 apart


@dataclass(frozen=True)
class MultiLabel:
    """A set of labels per text, possibly empty: a sigmoid per label and its binary
    cross-entropy (summed over the labels: a text's loss; the batch mean estimates the expected
    one). A text gets every label whose probability reaches ``threshold`` (one for all labels,
    or one each), chosen on validation when the model is trained; ``min_labels`` forces the
    most likely ones where fewer pass."""

    threshold: float | tuple[float, ...] = 0.5
    min_labels: int = 0
    pos_weight: float = 8.0  # the loss: a label's presence weighs this many times its absence

    name = "multi_label"
    metrics = SET_METRICS
    tunable = SET_TUNABLE
    main_metric = "micro_f1"
    shift_invariant = False  # each label's sigmoid reads its own logit
    # train.lr is set for cross-entropy; a sum of per-label losses, presence weighted
    # pos_weight times, is steeper: half the step did better on both benchmark corpora
    step_scale = 0.5
    score_name = "val_micro_f1"
    tally_size = 2 * HISTOGRAM_BINS

    def with_rule(self, threshold: float | None = None, min_labels: int | None = None) -> MultiLabel:
        """This task with the decision rule changed where given (predict --threshold, --min-labels)."""
        return dataclasses.replace(
            self,
            threshold=self.threshold if threshold is None else threshold,
            min_labels=self.min_labels if min_labels is None else min_labels,
        )

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        import numpy as np

        x = logits.astype(np.float64)
        return np.exp(-np.logaddexp(0.0, -x))  # 1 / (1 + e^-x), never overflowing

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        import torch.nn.functional as F

        weight = None if self.pos_weight == 1 else logits.new_tensor(self.pos_weight)
        per_text = F.binary_cross_entropy_with_logits(logits, targets, reduction="none", pos_weight=weight).sum(1)
        return per_text.mean() if reduction == "mean" else per_text.sum()

    def tally(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Histograms of the probabilities of the labels a text has and of those it has not:
        every threshold's micro-F1 follows from them, summed over batches and ranks."""
        import torch

        bins = (torch.sigmoid(logits.float()) * HISTOGRAM_BINS).long().clamp_(max=HISTOGRAM_BINS - 1)
        has = targets > 0.5
        return torch.cat(
            [torch.bincount(bins[has], minlength=HISTOGRAM_BINS), torch.bincount(bins[~has], minlength=HISTOGRAM_BINS)]
        )

    def score(self, tally: Sequence[float], count: int) -> float:
        """The micro-F1 of the best threshold (a bin edge) on the histograms of ``tally``."""
        import numpy as np

        pos, neg = np.asarray(tally[:HISTOGRAM_BINS], float), np.asarray(tally[HISTOGRAM_BINS:], float)
        tp, fp = np.cumsum(pos[::-1])[::-1], np.cumsum(neg[::-1])[::-1]  # predicted from bin b up
        fn = pos.sum() - tp
        f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=(2 * tp + fp + fn) > 0)
        return float(f1.max()) if len(f1) else 0.0

    def selection(self, val_loss: float, val_score: float) -> float:
        # the epoch of highest validation micro-F1; a tie (small validation splits) to the lower loss
        return -val_score + 1e-6 * val_loss

    def guess_loss(self, n_classes: int) -> float:
        """The loss of a model that knows nothing, every label a coin toss: C ln 2."""
        return n_classes * math.log(2)

    def initial_bias(self, labels: np.ndarray, n_classes: int) -> np.ndarray:
        """Each label's log-odds in the train split, add-one smoothed: where a text has no known
        feature, its probability is the label's share."""
        import numpy as np

        p = (labels.sum(axis=0, dtype=np.float64) + 1) / (len(labels) + 2)
        return np.log(p / (1 - p))

    @property
    def logit_shift(self) -> float:
        """What pos_weight adds to the logit the loss is lowest at (ln pos_weight, for every
        label; the features learn it, the bias is not trained): the saved model's bias drops
        it, so that its probabilities mean what they say. (In the bias while training instead,
        it cost 0.03-0.05 of validation micro-F1 on the benchmark corpora.)"""
        return math.log(self.pos_weight)

    def thresholds(self, n_labels: int) -> np.ndarray:
        import numpy as np

        return np.broadcast_to(np.asarray(self.threshold, dtype=np.float64), (n_labels,))

    def decide(self, probs: np.ndarray, known: np.ndarray, k: int, min_confidence: float) -> Decision:
        """The labels at or above the threshold (at least ``min_labels``), most likely first, and
        the top ``k``; a text with no token the model knows gets none (``min_confidence`` is one
        label's rule and is not used)."""
        import numpy as np

        order = np.argsort(-probs, axis=1, kind="stable")
        rounded = np.round(probs, 6)
        tops = order[:, : max(1, min(k, probs.shape[1]))]
        passed = probs >= self.thresholds(probs.shape[1])
        counts = np.maximum(passed.sum(axis=1), min(self.min_labels, probs.shape[1]))
        abstained = [NO_KNOWN_TOKENS if n == 0 else None for n in known.tolist()]
        chosen = [
            [] if why else [(j, p) for j, p in zip(row[:n], values[row[:n]].tolist(), strict=True)]
            for row, values, n, why in zip(order, rounded, counts.tolist(), abstained, strict=True)
        ]
        return Decision(tops, np.take_along_axis(rounded, tops, axis=1), abstained, chosen)

    def plain_probabilities(self, logits: Sequence[float]) -> list[float]:
        return [1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x)) for x in logits]

    def plain_decide(self, probs: list[float], known: int, k: int, min_confidence: float) -> tuple:
        """``decide`` for one text, in plain Python."""
        order = sorted(range(len(probs)), key=lambda j: -probs[j])
        rounded = [round(p * 1e6) / 1e6 for p in probs]
        top = order[: max(1, min(k, len(probs)))]
        thresholds = self.threshold if isinstance(self.threshold, tuple) else [self.threshold] * len(probs)
        passed = sum(p >= t for p, t in zip(probs, thresholds, strict=True))
        why = NO_KNOWN_TOKENS if known == 0 else None
        n = 0 if why else max(passed, min(self.min_labels, len(probs)))
        return top, [rounded[j] for j in top], why, [(j, rounded[j]) for j in order[:n]]

    def record(
        self, labels: list[str], top: list[int], probs: list[float], why: str | None, chosen: list | None = None
    ) -> dict[str, Any]:
        """One text's prediction: its ``labels`` (a list, possibly empty) and their
        ``probabilities``, and the ``top`` labels with theirs; ``abstained`` where it has no
        known token."""
        record = {
            "labels": [labels[j] for j, _ in chosen or ()],
            "probabilities": [p for _, p in chosen or ()],
            "top": [{"label": labels[j], "probability": p} for j, p in zip(top, probs, strict=True)],
        }
        if why is not None:
            record["abstained"] = why
        return record

    def report(self, probs: np.ndarray, truth: np.ndarray, labels: list[str]) -> dict[str, Any]:
        """evaluate's numbers at the model's threshold: every metric, per label, cardinality."""
        return set_report(probs, truth, labels, self.thresholds(len(labels)))

    def scores(self, probs: np.ndarray, truth: np.ndarray, n_classes: int) -> dict[str, Any]:
        """tune's numbers for a trial, its threshold chosen on the same documents as a trained
        model's is; under ``per_doc``, each document's part (its F1 and its loss)."""

        threshold, _ = best_threshold(probs, truth)
        outcome = SetOutcome.of(probs, truth, threshold)
        scores: dict[str, Any] = {name: SET_METRICS[name].fn(outcome) for name in SET_TUNABLE}
        doc_f1 = outcome.text_f1()
        scores["per_doc"] = {"micro_f1": doc_f1, "macro_f1": doc_f1, "loss": text_log_losses(probs, truth)}
        scores["threshold"] = threshold
        return scores


TASKS: dict[str, Task] = {"single_label": SingleLabel(), "multi_label": MultiLabel()}
DEFAULT_TASK = "single_label"  # models made before the task was recorded answer this one


def check_task(name: object) -> None:
    """A task's name as a file records it: one of ``TASKS`` (read when checked, so a task added
    to the table is known at once)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r} (one of {', '.join(TASKS)})")


def training_task(meta: dict[str, Any], pos_weight: float) -> Task:
    """The task the data asks for, with the loss's weight of a label's presence (several labels)."""
    task = task_of(meta)
    return dataclasses.replace(task, pos_weight=pos_weight) if isinstance(task, MultiLabel) else task


def task_of(meta: dict[str, Any]) -> Task:
    """The task of a model (its model.json, with its decision rule) or of prepared data (its
    manifest)."""
    task = TASKS[meta.get("task", DEFAULT_TASK)]
    decision = meta.get("decision")
    if isinstance(task, MultiLabel) and decision:
        own = decision.get("thresholds") or {}
        threshold = decision["threshold"]
        if own:
            threshold = tuple(own.get(label, threshold) for label in meta["labels"])
        return task.with_rule(threshold)
    return task
