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
from pathlib import Path

from .bundle import load_bundle
from .inference import Predictor
from .prediction import Options, label_columns, records_of


class Model:
    """A trained model loaded from its run directory (checksums verified)."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir)
        self._predictor = Predictor(load_bundle(self.path))

    @property
    def labels(self) -> list[str]:
        return list(self._predictor.labels)

    def predict(self, texts: Iterable[str], k: int = 1, min_confidence: float = 0.0) -> list[dict]:
        """One record per text: ``label`` (None when it abstains), ``probability``, the top ``k``."""
        if isinstance(texts, str):  # one string would be read as its characters
            raise TypeError("predict takes a list of texts; for one text, predict([text])")
        texts = list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be strings")
        if not texts:
            return []
        opts = Options(k=max(1, min(k, len(self._predictor.labels))), min_confidence=min_confidence)
        return records_of(label_columns(self._predictor, texts, opts), self._predictor, opts)

    def __repr__(self) -> str:
        return f"Model({str(self.path)!r}, labels={self.labels!r})"
