"""classify: train, evaluate and serve news-topic classifiers from the shell."""

from .util.version import __version__

__all__ = ["__version__", "load"]


def load(run_dir):
    """A trained model for programs: ``load(run_dir).predict(texts, k=1)`` (see ``api.py``)."""
    from .serve.api import Model  # here, not above: `classify --help` imports this package

    return Model(run_dir)
