"""classify: train, evaluate and serve news-topic classifiers from the shell."""

__version__ = "0.1.0"


def load(run_dir):
    """A trained model for programs: ``load(run_dir).predict(texts, k=1)`` (see ``api.py``)."""
    from .api import Model  # here, not above: `classify --help` imports this package

    return Model(run_dir)
