"""Expected failures and their exit codes (documented in the README).

Anything raised as a ``ClassifyError`` is shown as one line on stderr; the CLI adds a
traceback only with ``--debug``.
"""

from __future__ import annotations

import errno

EXIT_OK = 0
EXIT_BELOW_THRESHOLD = 1  # evaluate: a --fail-under metric fell below its value
EXIT_USAGE = 2  # bad option, path, config, input data or model file
EXIT_ENVIRONMENT = 3  # the outside world said no: Hub unreachable, unwritable output, run locked
EXIT_DIVERGED = 4  # training loss became NaN or infinite
EXIT_INTERNAL = 70  # an unexpected error: a bug, reported with --debug's traceback
EXIT_INTERRUPTED = 130  # Ctrl-C / SIGTERM (after saving a checkpoint where there is one)


class ClassifyError(Exception):
    """An expected failure: one message for the user and an exit code."""

    exit_code = EXIT_USAGE


class InputError(ClassifyError):
    """A path, file or data row that cannot be used."""


class ConfigError(ClassifyError):
    """A config key that is unknown, of the wrong type or out of range."""


class BundleError(ClassifyError):
    """A model bundle or prepared-data directory that is missing, foreign or tampered with."""


class EnvironmentFailure(ClassifyError):
    """The network, the file system or another process stood in the way."""

    exit_code = EXIT_ENVIRONMENT


class DivergedError(ClassifyError):
    exit_code = EXIT_DIVERGED


class Interrupted(ClassifyError):
    exit_code = EXIT_INTERRUPTED


def os_failure(exc: OSError, what: str) -> EnvironmentFailure:
    """An OS error while writing ``what``, as the environment failure it is (exit 3)."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = "permission denied (read-only?)"
    return EnvironmentFailure(f"cannot write {what}: {reason}")
