"""The Python API: a trained model for programs and batch engines.

    import classify_cli
    model = classify_cli.load("runs/ag_news")
    model.labels                      # ['World', 'Sports', 'Business', 'Sci/Tech']
    model.predict(["Stocks rally as the Fed holds rates"], k=2)
    # [{'text': ..., 'label': 'Business', 'probability': 0.95, 'top': [{...}, {...}]}]
    # a model of several labels per text: {'text': ..., 'labels': ['Business'], 'probabilities': [0.91], 'top': [...]}

The records are ``predict --format json``'s. No torch: numpy over the model file, mapped.
One model may serve several threads at once: scoring reads the tensors and never writes them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from numbers import Integral, Real
from pathlib import Path

from .prediction import Options, label_columns, records_of


def check_options(k: object, min_confidence: object, names: tuple[str, str] = ("k", "min_confidence")) -> None:
    """predict's k (at least 1) and min_confidence (0 to 1), for the API and the command line
    (which names them ``names``): TypeError or ValueError, with a message that says what is wanted."""
    for name, value, kind in ((names[0], k, Integral), (names[1], min_confidence, Real)):
        if isinstance(value, bool) or not isinstance(value, kind):
            wanted = "an integer" if kind is Integral else "a number"
            raise TypeError(f"{name} must be {wanted}, not {type(value).__name__} {value!r}")
    if k < 1:  # type: ignore[operator]
        raise ValueError(f"{names[0]} must be at least 1, not {k}")
    if not 0.0 <= min_confidence <= 1.0:  # type: ignore[operator]  # NaN fails both comparisons
        raise ValueError(f"{names[1]} must be between 0 and 1, not {min_confidence}")


def apply_rule(
    task,
    threshold: object,
    min_labels: object,
    names: tuple[str, str, str] = ("threshold", "min_labels", "min_confidence"),
    min_confidence: float = 0.0,
):
    """The task with predict's decision rule for a set of labels per text (``threshold`` 0 to 1,
    ``min_labels`` at least 0; None keeps the model's): ValueError for a model of one label
    per text, which has neither, or a value out of range, and for ``min_confidence`` (one
    label's rule) on a model of several."""
    if task.name == "multi_label" and min_confidence:
        raise ValueError(f"{names[2]} is for a model of one label per text; this one gives several: {names[0]}")
    if threshold is None and min_labels is None:
        return task
    if task.name != "multi_label":
        given = names[0] if threshold is not None else names[1]
        raise ValueError(f"{given} is for a model of several labels per text; this one gives one label per text")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, Real):
            raise TypeError(f"{names[0]} must be a number, not {type(threshold).__name__} {threshold!r}")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"{names[0]} must be between 0 and 1, not {threshold}")
    if min_labels is not None:
        if isinstance(min_labels, bool) or not isinstance(min_labels, Integral):
            raise TypeError(f"{names[1]} must be an integer, not {type(min_labels).__name__} {min_labels!r}")
        if min_labels < 0:
            raise ValueError(f"{names[1]} must be at least 0, not {min_labels}")
    return task.with_rule(None if threshold is None else float(threshold), min_labels)


class Model:
    """A trained model loaded from its run directory (checksums verified)."""

    def __init__(self, run_dir: str | Path):
        from ..model.bundle import load_bundle  # here: predict's option checks above need no numpy
        from ..model.inference import Predictor

        self.path = Path(run_dir)
        self._predictor = Predictor(load_bundle(self.path))

    @property
    def labels(self) -> list[str]:
        return list(self._predictor.labels)

    @property
    def task(self) -> str:
        """``single_label`` (one label per text) or ``multi_label`` (a set of labels per text)."""
        return self._predictor.task.name

    def predict(
        self,
        texts: Iterable[str],
        k: int = 1,
        min_confidence: float = 0.0,
        threshold: float | None = None,
        min_labels: int | None = None,
    ) -> list[dict]:
        """One record per text: ``label`` (None when it abstains), ``probability``, the top ``k``.
        A model of several labels per text gives ``labels`` (a list, possibly empty) and their
        ``probabilities`` instead, each label at or above ``threshold`` (default: the model's,
        chosen on validation), at least ``min_labels`` of them."""
        if isinstance(texts, str):  # one string would be read as its characters
            raise TypeError("predict takes a list of texts; for one text, predict([text])")
        check_options(k, min_confidence)
        task = apply_rule(self._predictor.task, threshold, min_labels, min_confidence=min_confidence)
        texts = list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be strings")
        if not texts:
            return []
        opts = Options(k=min(int(k), len(self._predictor.labels)), min_confidence=float(min_confidence))
        predictor = copy.copy(self._predictor)  # its rule for this call alone: threads share the model
        predictor.task = task
        return records_of(label_columns(predictor, texts, opts), predictor, opts)

    def __repr__(self) -> str:
        return f"Model({str(self.path)!r}, labels={self.labels!r})"
