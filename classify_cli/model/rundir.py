"""A run directory's files, named in one place: what ``train`` and ``tune`` write there and what
makes a folder one (``is_run_dir``), for every command that writes, reads or refuses it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..util.errors import InputError
from ..util.fs import read_regular

META = "model.json"  # the bundle's description, written last: the commit point
MODEL_FORMAT = "classify-model"  # model.json's "format"
MODEL_FILE = re.compile(r"model-[0-9a-f]{16}\.safetensors")  # the weights, named by their checksum
METRICS_LOG = "metrics.jsonl"  # one row per epoch
CHECKPOINT = "checkpoint"  # an interrupted run's state, a folder
TUNED = "tuned.toml"  # tune's chosen config
TRIALS = "trials.jsonl"  # tune's trials, one row each


def is_run_file(name: str) -> bool:
    """Whether ``name`` is one of the files ``train`` writes in a run directory."""
    return name in (CHECKPOINT, META, METRICS_LOG) or MODEL_FILE.fullmatch(name) is not None


def is_run_dir(path: Path) -> bool:
    """Whether ``path`` is a run directory ``train`` wrote: a classify ``model.json`` (of any
    version) or a checkpoint."""
    path = Path(path)
    if (path / CHECKPOINT / "state.json").is_file():
        return True
    try:
        meta = json.loads(read_regular(path / META).decode("utf-8"))
    except (OSError, InputError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(meta, dict) and meta.get("format") == MODEL_FORMAT
