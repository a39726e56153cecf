"""The Python API: a trained model for programs and batch engines.

    import classify_cli
    model = classify_cli.load("runs/ag_news")
    model.labels                      # ['World', 'Sports', 'Business', 'Sci/Tech']
    model.predict(["Stocks rally as the Fed holds rates"], k=2)
    # [{'text': ..., 'label': 'Business', 'probability': 0.95, 'top': [{...}, {...}]}]

The records are ``predict --format json``'s. No torch: numpy over the model file, mapped.
One model may serve several threads at once: scoring reads the tensors and never writes them.
"""

from __future__ import annotations

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

    def predict(self, texts: Iterable[str], k: int = 1, min_confidence: float = 0.0) -> list[dict]:
        """One record per text: ``label`` (None when it abstains), ``probability``, the top ``k``."""
        if isinstance(texts, str):  # one string would be read as its characters
            raise TypeError("predict takes a list of texts; for one text, predict([text])")
        check_options(k, min_confidence)
        texts = list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be strings")
        if not texts:
            return []
        opts = Options(k=min(int(k), len(self._predictor.labels)), min_confidence=float(min_confidence))
        return records_of(label_columns(self._predictor, texts, opts), self._predictor, opts)

    def __repr__(self) -> str:
        return f"Model({str(self.path)!r}, labels={self.labels!r})"
