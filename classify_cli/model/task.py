"""The task a model answers, owned in one place: one label per text (``SingleLabel``).

A task says how logits become probabilities and what the training loss is, how a label is
decided (the top k; abstaining below a confidence or without a known token), what record a
prediction yields, and which metrics judge it. The trainer, evaluate, predict, tune,
compress and the API ask the model's task (``task_of``) rather than knowing these, and
model.json records it. Another task is another class here and an entry in ``TASKS``; one of
several labels per text (a sigmoid per label) also needs its labels stored in prepared data,
counted by the features, and written by predict's output formats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..util.floats import pairwise_sum
from .metrics import METRICS, TUNABLE, Metric, Outcome, classification_report

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


class Task(Protocol):
    name: str
    metrics: dict[str, Metric]  # the numbers that judge it (for single_label: metrics.METRICS)
    tunable: tuple[str, ...]  # what tune may optimize

    def probabilities(self, logits: np.ndarray) -> np.ndarray: ...
    def loss(self, logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor: ...
    def hits(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor: ...
    def guess_loss(self, n_classes: int) -> float: ...
    def decide(self, probs: np.ndarray, known: np.ndarray, k: int, min_confidence: float) -> Decision: ...
    # the same two for one text in plain Python (predict TEXT without numpy), numpy's numbers
    def plain_probabilities(self, logits: Sequence[float]) -> list[float]: ...
    def plain_decide(
        self, probs: list[float], known: int, k: int, min_confidence: float
    ) -> tuple[list[int], list[float], str | None]: ...
    def record(self, labels: list[str], top: list[int], probs: list[float], why: str | None) -> dict[str, Any]: ...
    def report(self, probs: np.ndarray, truth: np.ndarray, labels: list[str]) -> dict[str, Any]: ...
    def scores(self, probs: np.ndarray, truth: np.ndarray, n_classes: int) -> dict[str, Any]: ...


class SingleLabel:
    """One label per text: softmax over the classes, cross-entropy against the true one (the
    mean over a batch estimates the expected loss), argmax to decide."""

    name = "single_label"
    metrics = METRICS
    tunable = TUNABLE

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        import numpy as np

        logits = logits.astype(np.float64)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))  # shifted: exp never overflows
        return exp / exp.sum(axis=1, keepdims=True)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        import torch.nn.functional as F  # the trainer's alone: predict never imports torch

        return F.cross_entropy(logits, targets, reduction=reduction)  # log-softmax and NLL in one

    def hits(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """How many documents the logits label right."""
        return (logits.argmax(1) == targets).sum()

    def guess_loss(self, n_classes: int) -> float:
        """The loss of a model that knows nothing, every class alike: ln C."""
        return math.log(n_classes)

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
    ) -> tuple[list[int], list[float], str | None]:
        """``decide`` for one text: the top indices (a stable sort, as numpy's), their
        probabilities rounded as ``np.round(p, 6)`` (the same multiply, half-to-even, divide), why
        it abstains."""
        top = sorted(range(len(probs)), key=lambda j: -probs[j])[: max(1, min(k, len(probs)))]
        top_probs = [round(probs[j] * 1e6) / 1e6 for j in top]
        why = NO_KNOWN_TOKENS if known == 0 else None
        if why is None and top_probs[0] < min_confidence:
            why = f"confidence below {min_confidence:g}"
        return top, top_probs, why

    def record(self, labels: list[str], top: list[int], probs: list[float], why: str | None) -> dict[str, Any]:
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


TASKS: dict[str, Task] = {"single_label": SingleLabel()}
DEFAULT_TASK = "single_label"  # models made before the task was recorded answer this one


def check_task(name: object) -> None:
    """A task's name as a file records it: one of ``TASKS`` (read when checked, so a task added
    to the table is known at once)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r} (one of {', '.join(TASKS)})")


def task_of(meta: dict[str, Any]) -> Task:
    """The task of a model (its model.json) or of prepared data (its manifest)."""
    return TASKS[meta.get("task", DEFAULT_TASK)]
