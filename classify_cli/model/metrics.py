"""Classification metrics with numpy: accuracy, F1, confusion matrix, log loss, calibration."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported where it is used: `classify evaluate --help` lists METRICS
    import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    import numpy as np

    flat = np.asarray(y_true, np.int64) * num_classes + np.asarray(y_pred, np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def log_loss(probs: np.ndarray, y_true: np.ndarray) -> float:
    """Mean cross-entropy of the true class (natural log), probabilities clipped at 1e-15."""
    import numpy as np

    if len(y_true) == 0:
        return float("nan")
    picked = probs[np.arange(len(y_true)), y_true]
    return float(-np.mean(np.log(np.clip(picked, 1e-15, 1.0))))


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, bins: int = 15) -> float:
    """Gap between confidence and accuracy, averaged over equal-width confidence bins."""
    import numpy as np

    if len(y_true) == 0:
        return float("nan")
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total)


@dataclass(frozen=True)
class Outcome:
    """A labeled batch's predictions, the counts every metric is computed from."""

    probs: np.ndarray  # (n, classes)
    y_true: np.ndarray
    cm: np.ndarray  # confusion matrix: rows true, columns predicted
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray  # true documents per class

    @classmethod
    def of(cls, probs: np.ndarray, y_true: np.ndarray, num_classes: int) -> Outcome:
        import numpy as np

        y_pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, np.int64)
        cm = confusion_matrix(y_true, y_pred, num_classes)
        tp = np.diag(cm).astype(np.float64)
        support = cm.sum(axis=1).astype(np.float64)
        precision = _safe_div(tp, cm.sum(axis=0).astype(np.float64))
        recall = _safe_div(tp, support)
        return cls(probs, y_true, cm, precision, recall, _safe_div(2 * precision * recall, precision + recall), support)

    @property
    def n(self) -> int:
        return len(self.y_true)


def _macro_f1(o: Outcome) -> float:

    present = (o.support > 0) | (o.cm.sum(axis=0) > 0)  # as scikit-learn: classes seen in truth or prediction
    return float(o.f1[present].mean()) if present.any() else float("nan")


@dataclass(frozen=True)
class Metric:
    """One number of a report: how it is computed, which way is better, whether it is a share."""

    fn: Callable[[Outcome], float]
    higher_is_better: bool
    bounded: bool = True  # a share or a probability, in [0, 1]


# the metrics evaluate reports, in its table's order; --fail-under/--fail-over take their names
METRICS: dict[str, Metric] = {
    "accuracy": Metric(lambda o: float(o.cm.trace() / o.n) if o.n else float("nan"), True),
    "macro_f1": Metric(_macro_f1, True),
    "weighted_f1": Metric(lambda o: float((o.f1 * o.support).sum() / o.support.sum()) if o.n else float("nan"), True),
    "loss": Metric(lambda o: log_loss(o.probs, o.y_true), False, bounded=False),
    "ece": Metric(lambda o: expected_calibration_error(o.probs, o.y_true), False),
    "mean_confidence": Metric(lambda o: float(o.probs.max(axis=1).mean()) if o.n else float("nan"), True),
}


# what classify tune may optimize (its direction: higher_is_better)
TUNABLE = ("accuracy", "macro_f1", "loss")


def classification_report(probs: np.ndarray, y_true: np.ndarray, labels: list[str]) -> dict[str, Any]:

    o = Outcome.of(probs, y_true, len(labels))
    return {
        "n": o.n,
        **{name: metric.fn(o) for name, metric in METRICS.items()},
        "labels": list(labels),
        "per_class": {
            label: {
                "precision": float(o.precision[i]),
                "recall": float(o.recall[i]),
                "f1": float(o.f1[i]),
                "support": int(o.support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": o.cm.tolist(),
    }


# --- several labels per text -------------------------------------------------------------


@dataclass(frozen=True)
class SetOutcome:
    """Decisions of a batch where each text has a set of labels: truth and prediction as 0/1
    arrays of texts x labels, and each label's counts."""

    probs: np.ndarray  # (n, labels) each label's probability, independently
    truth: np.ndarray  # (n, labels) bool
    pred: np.ndarray  # (n, labels) bool
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray

    @classmethod
    def of(cls, probs: np.ndarray, truth: np.ndarray, threshold: np.ndarray | float) -> SetOutcome:
        import numpy as np

        truth = truth.astype(bool)
        pred = probs >= threshold
        tp = (pred & truth).sum(axis=0).astype(np.float64)
        return cls(probs, truth, pred, tp, (pred & ~truth).sum(axis=0), (~pred & truth).sum(axis=0))

    @property
    def n(self) -> int:
        return len(self.truth)

    @property
    def f1(self) -> np.ndarray:
        return _safe_div(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    def text_f1(self) -> np.ndarray:
        """Each text's F1 of its predicted set against its true one; a text with neither is right."""
        import numpy as np

        both = (self.pred & self.truth).sum(axis=1)
        sizes = self.pred.sum(axis=1) + self.truth.sum(axis=1)
        return np.where(sizes > 0, 2 * both / np.maximum(sizes, 1), 1.0)


def micro_f1(tp: float, fp: float, fn: float) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")


def text_log_losses(probs: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Each text's summed binary cross-entropy of every label (natural log, probabilities clipped at 1e-15)."""
    import numpy as np

    return -np.log(np.clip(np.where(truth.astype(bool), probs, 1 - probs), 1e-15, 1.0)).sum(axis=1)


def _binary_ece(o: SetOutcome) -> float:
    """Calibration of every (text, label) yes-or-no as a two-class decision: ``ece`` of them all."""
    import numpy as np

    p = o.probs.ravel()
    return expected_calibration_error(np.stack([1 - p, p], axis=1), o.truth.ravel().astype(np.int64))


def _macro_set_f1(o: SetOutcome) -> float:
    present = (o.tp + o.fp + o.fn) > 0  # as for one label: labels seen in truth or prediction
    return float(o.f1[present].mean()) if present.any() else float("nan")


def _mean(fn: Callable[[SetOutcome], Any]) -> Callable[[SetOutcome], float]:
    return lambda o: float(fn(o).mean()) if o.n else float("nan")


SET_METRICS: dict[str, Metric] = {
    "micro_f1": Metric(lambda o: micro_f1(o.tp.sum(), o.fp.sum(), o.fn.sum()), True),
    "macro_f1": Metric(_macro_set_f1, True),
    "samples_f1": Metric(_mean(SetOutcome.text_f1), True),
    "subset_accuracy": Metric(_mean(lambda o: (o.pred == o.truth).all(axis=1)), True),
    "hamming_loss": Metric(_mean(lambda o: o.pred != o.truth), False),
    "loss": Metric(_mean(lambda o: text_log_losses(o.probs, o.truth)), False, bounded=False),
    "ece": Metric(lambda o: _binary_ece(o), False),
    # how sure each yes-or-no is, max(p, 1 - p), over every text and label: drift's reference
    "mean_confidence": Metric(_mean(lambda o: abs(o.probs - 0.5) + 0.5), True),
}
SET_TUNABLE = ("micro_f1", "macro_f1", "loss")


def set_report(probs: np.ndarray, truth: np.ndarray, labels: list[str], threshold) -> dict[str, Any]:
    """evaluate's numbers for texts with sets of labels: every metric, per label, cardinality."""
    o = SetOutcome.of(probs, truth, threshold)
    precision, recall = _safe_div(o.tp, o.tp + o.fp), _safe_div(o.tp, o.tp + o.fn)
    return {
        "n": o.n,
        **{name: metric.fn(o) for name, metric in SET_METRICS.items()},
        "labels": list(labels),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(o.f1[i]),
                "support": int(o.tp[i] + o.fn[i]),
                "predicted": int(o.tp[i] + o.fp[i]),
            }
            for i, label in enumerate(labels)
        },
        # labels per text, on average: the truth's and the model's
        "cardinality": {
            "true": float(o.truth.sum(axis=1).mean()) if o.n else float("nan"),
            "predicted": float(o.pred.sum(axis=1).mean()) if o.n else float("nan"),
        },
    }


def best_threshold(probs: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """The threshold of highest micro-F1 over ``probs`` against ``truth`` (any shape alike),
    and that F1: every cut between two distinct probabilities is tried (a sort), and the
    threshold is the midpoint of the cut, so that nearby probabilities fall as they did."""
    import numpy as np

    p, t = probs.ravel().astype(np.float64), truth.ravel().astype(bool)
    positives = int(t.sum())
    if positives == 0 or len(p) == 0:
        return 0.5, float("nan")
    order = np.argsort(-p, kind="stable")
    p, t = p[order], t[order]
    tp = np.cumsum(t)
    predicted = np.arange(1, len(p) + 1)
    last = np.append(p[1:] != p[:-1], True)  # a cut falls only after the last of equal probabilities
    f1 = np.where(last, 2 * tp / (predicted + positives), -1.0)
    i = int(f1.argmax())
    below = p[i + 1] if i + 1 < len(p) else 0.0
    return float((p[i] + below) / 2), float(f1[i])


def choose_threshold(probs: np.ndarray, truth: np.ndarray, labels: list[str], per_label: bool) -> dict[str, Any]:
    """model.json's ``decision``: the threshold of highest micro-F1 on the validation
    documents, and with ``per_label`` each label's own where it has ``MIN_SUPPORT`` of them
    (fewer would pick a threshold by chance); ``micro_f1`` at the thresholds chosen."""
    import numpy as np

    threshold, f1 = best_threshold(probs, truth)
    own = {}
    if per_label:
        for j, label in enumerate(labels):
            if truth[:, j].sum() >= MIN_SUPPORT:
                own[label] = round(best_threshold(probs[:, j], truth[:, j])[0], 6)
        each = np.array([own.get(label, threshold) for label in labels])
        o = SetOutcome.of(probs, truth, each)
        f1 = micro_f1(o.tp.sum(), o.fp.sum(), o.fn.sum())
    decision: dict[str, Any] = {
        "threshold": round(threshold, 6),
        "chosen_on": "validation",
        "micro_f1": f1 if math.isfinite(f1) else None,  # none where validation has no label at all
    }
    if per_label:
        decision["thresholds"] = own
    return decision


MIN_SUPPORT = 20  # validation documents of a label before it gets a threshold of its own


# what --fail-under (higher is better) and --fail-over (lower is better) may name: either
# task's metrics and the batch's out-of-vocabulary rate, which evaluate adds to the report
_ALL = {**METRICS, **SET_METRICS}
HIGHER_IS_BETTER = tuple(name for name, m in _ALL.items() if m.higher_is_better)
LOWER_IS_BETTER = (*(name for name, m in _ALL.items() if not m.higher_is_better), "oov_rate")
UNBOUNDED = tuple(name for name, m in _ALL.items() if not m.bounded)
