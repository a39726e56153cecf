"""classify: train, evaluate and serve news-topic classifiers from the shell."""

__version__ = "0.1.0"
