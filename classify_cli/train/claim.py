"""A training run's directory claimed: locked, checked as replaceable (or as a checkpoint to
resume), and removed again if the run fails before it holds anything worth keeping."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..model.meta import is_compressed
from ..model.rundir import CHECKPOINT, META, is_run_dir, is_run_file
from ..util.config import Config, config_from_dict
from ..util.errors import BundleError, InputError, Interrupted
from ..util.lock import DirectoryLock
from ..util.swap import check_replaceable, recover
from .checkpoint import load_checkpoint
from .distributed import World, train_command


def claim(
    out_dir: Path,
    data_dir: Path | None,
    cfg: Config | None,
    resume: bool,
    epochs: int | None,
    world: World,
    held: contextlib.ExitStack,
    checkpoint: dict[str, np.ndarray],
) -> dict[str, Any]:
    """Lock and check the run directory (the lock stays in ``held``); when resuming, read the
    checkpoint (its tensors into ``checkpoint``). Returns what every rank trains by: the
    config, the data's path and the checkpoint's state."""
    held.enter_context(DirectoryLock(out_dir, "train"))  # first: what is read next is then no one else's
    # the run directory and those of its parents this call will create, deepest first (looked
    # at once locked: taking the lock may put back a run directory a killed swap took away)
    created = [d for d in (out_dir, *out_dir.parents) if not os.path.lexists(d)]
    held.enter_context(_removed_on_failure(created))
    if not resume:
        check_replaceable(out_dir, is_run_dir, "a classify run directory")
    recover(out_dir, is_run_file)  # a killed train's temporaries (a checkpoint half-written or swapped out)
    if resume:
        if not (out_dir / CHECKPOINT / "state.json").is_file() and is_compressed(out_dir):
            raise BundleError(
                f"{out_dir} is a compressed model (classify compress): it keeps no training state to resume"
            )
        if not (out_dir / CHECKPOINT / "state.json").is_file() and (out_dir / META).is_file() and is_run_dir(out_dir):
            raise InputError(
                f"{out_dir} finished training: a finished run keeps its model, not the state to go on from; "
                "train again with --epochs N"
            )
        state, tensors = load_checkpoint(out_dir)
        _check_world_size(out_dir, state, world)
        cfg = config_from_dict(state["config"])
        if epochs is not None:  # going on for longer (or shorter) than the run was started with
            if epochs < state["progress"]["epoch"]:
                raise InputError(
                    f"--epochs {epochs}: the run is already in epoch {state['progress']['epoch']}; give at least that"
                )
            cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=epochs))
        data_dir = Path(state["data"]["path"])
        checkpoint.update(tensors)
    assert cfg is not None and data_dir is not None
    return {"config": cfg.to_dict(), "data": str(data_dir), "state": state if resume else None}


def _check_world_size(out_dir: Path, state: dict[str, Any], world: World) -> None:
    ranks = state.get("world_size", 1)
    if ranks != world.size:
        how = train_command(dataclasses.replace(world, size=ranks))
        raise InputError(
            f"{out_dir} was trained by {ranks} rank(s), not {world.size}: a run resumes exactly only with "
            f"the same number ({how} --resume {out_dir})"
        )


@contextlib.contextmanager
def _removed_on_failure(created: list[Path]) -> Iterator[None]:
    """Remove the directories ``created`` for a run that then failed (the run directory, then
    the parents made for it; those made for the lock, the lock removes), so a diverged or
    refused run leaves no empty directory; directories that existed before are left as they were."""
    try:
        yield
    except Interrupted:
        raise  # the checkpoint in the run directory is what --resume needs
    except BaseException:
        if created:
            shutil.rmtree(created[0], ignore_errors=True)
            for parent in created[1:]:
                with contextlib.suppress(OSError):  # rmdir removes an empty directory only
                    parent.rmdir()
        raise
