"""Classification metrics with numpy: accuracy, F1, confusion matrix, log loss, calibration."""

from __future__ import annotations

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


# what --fail-under (higher is better) and --fail-over (lower is better) may name: the metrics
# above and the batch's out-of-vocabulary rate, which evaluate adds to the report
HIGHER_IS_BETTER = tuple(name for name, m in METRICS.items() if m.higher_is_better)
LOWER_IS_BETTER = (*(name for name, m in METRICS.items() if not m.higher_is_better), "oov_rate")
UNBOUNDED = tuple(name for name, m in METRICS.items() if not m.bounded)
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
