"""The package's version, in one place (read by model files, prepared data and ``--version``)."""

__version__ = "0.1.0"
