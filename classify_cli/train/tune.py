"""``classify tune``: the best config a wall-time budget finds, judged on the validation split
(or, where that is too small to tell configs apart, by k-fold cross-validation of the train split).

Optuna's TPE sampler proposes a config (its first trial is the config given, which always
finishes, however short the budget, so the search never ends below ``train``); ``run.train``
trains it like ``train`` does, into a trial directory beside the output; the trial's best
epoch is scored on the validation split, or on each fold's held-out documents (``folds``). A median pruner stops trials whose validation numbers
after an epoch trail the trials before them. The test split is never read. The chosen
trial's run (with folds: the chosen config trained on the whole train split) becomes the
output, with ``tuned.toml`` (its config) and ``trials.jsonl`` beside the model.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..model.rundir import META, METRICS_LOG, TRIALS, TUNED, is_run_dir
from ..model.task import task_of
from ..util.config import Config, config_from_dict, to_toml
from ..util.errors import DivergedError, EnvironmentFailure, InputError, Interrupted
from ..util.fs import atomic_write_bytes
from ..util.lock import DirectoryLock, scratch_directory
from ..util.swap import atomic_directory, check_replaceable
from .trials import (
    TUNED_ROOM,
    TooLarge,
    as_params,
    default_metric,
    delivered,
    folds_for,
    suggest,
    validation_probs,
)


def check_tune_inputs(
    data_dir: Path,
    out_dir: Path,
    budget: float,
    metric: str,
    folds: int | None = None,
    max_bytes: int | None = None,
) -> tuple[dict[str, Any], int]:
    """Refuse before any work what cannot be tuned; returns the prepared data's manifest and
    the number of folds that judge a trial (1: the validation split)."""
    from ..data.prepared import read_manifest

    manifest = read_manifest(Path(data_dir))
    tunable = task_of(manifest).tunable
    if metric not in tunable:
        kind = "several labels per text" if manifest.get("task") == "multi_label" else "one label per text"
        raise InputError(f"--metric {metric}: data of {kind} is judged by one of {', '.join(tunable)}")
    splits = manifest["splits"]
    if splits["validation"]["rows"] == 0:
        raise InputError(f"{data_dir} has no validation documents: tune judges configs on them")
    k = folds_for(splits, folds)
    if folds is not None and not 1 <= k <= splits["train"]["rows"]:
        raise InputError(f"--folds {k}: give 1 (the validation split) to {splits['train']['rows']:,} (train documents)")
    k = min(k, splits["train"]["rows"])  # auto: no more folds than train documents
    # no budget is too small: trial 0 (the config given) finishes whatever the budget
    if not math.isfinite(budget) or budget <= 0:
        raise InputError(f"--budget {budget:g}: give a positive number of seconds")
    if max_bytes is not None:
        from .compress import smallest_bytes

        smallest = smallest_bytes(manifest["labels"]) + TUNED_ROOM
        if max_bytes < smallest:
            raise InputError(
                f"--max-size {max_bytes:,} bytes: no model of {len(manifest['labels'])} classes is that small "
                f"(one of a single feature takes over {smallest:,})"
            )
    check_replaceable(out_dir, is_run_dir, "a classify run directory")
    return manifest, k


def tune(
    data_dir: Path,
    out_dir: Path,
    base: Config,
    *,
    budget: float,
    trials: int | None,
    metric: str | None,
    seed: int,
    folds: int | None = None,
    max_bytes: int | None = None,
    log: Callable[[str], None] = print,
    on_trial: Callable[[dict[str, Any], dict[str, Any] | None], None] = lambda row, best: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """Search configs for ``budget`` seconds (or ``trials`` trials), then make the chosen
    trial's model the run in ``out_dir`` (the best, unless within noise of the config given:
    ``_choose``). ``folds``: how many folds of the train split judge a trial (1: the validation
    split; None: ``folds_for`` decides); ``max_bytes``: each model is judged as delivered, no
    larger than that (compressed where need be). Returns the trials and the chosen one."""
    try:
        import optuna
    except ImportError:
        raise EnvironmentFailure("classify tune needs Optuna: pip install optuna (the tune extra)") from None
    import numpy as np

    from ..data.folds import write_folds
    from ..data.prepared import load_prepared
    from .compress import model_bytes
    from .run import train

    started = time.perf_counter()
    out_dir = Path(out_dir)
    metric = metric or default_metric(data_dir)
    manifest, k = check_tune_inputs(data_dir, out_dir, budget, metric, folds, max_bytes)
    n_train, n_classes = manifest["splits"]["train"]["rows"], len(manifest["labels"])
    task = task_of(manifest)  # how a trial is scored
    several = task.name == "multi_label"
    judged = "on validation" if k == 1 else f"in {k}-fold cross-validation"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    direction = "maximize" if task.metrics[metric].higher_is_better else "minimize"
    study = optuna.create_study(
        direction=direction,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),  # epoch 1 is noisy
    )
    study.enqueue_trial(as_params(base, several))  # the config given comes first
    rows: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    given: dict[str, Any] = {}  # trial 0, the config given, once it completed
    per_doc: dict[int, Any] = {}  # each trial's per-document validation scores (kept: a few KB a trial)
    final_s = [0.0]  # with folds: time kept back for training the chosen config at the end
    only_given: list[float] = []  # trial 0's seconds, when they spent the budget
    interrupted: list[bool] = []  # Ctrl-C that stopped the search at once

    def out_of_time() -> bool:
        return should_stop() or time.perf_counter() - started > budget - final_s[0]

    def quiet(message: str) -> None:
        pass

    def validation_of(path: Path):
        return load_prepared(path, ("validation",)).splits["validation"]

    # locked from here to the commit (as train locks its run): no other writer can swap it meanwhile
    with DirectoryLock(out_dir, "tune") as lock, scratch_directory(lock.directory) as work:
        validation = validation_of(Path(data_dir))  # read once: every trial is scored on it
        # each fold's directory, held-out train documents and validation split (those documents)
        folds_written = write_folds(data_dir, k, seed, work / "folds") if k > 1 else []
        fold_data = [(path, held, validation_of(path)) for path, held in folds_written]
        if k > 1:
            log(
                f"judging trials by {k}-fold cross-validation of the {n_train:,} train documents "
                f"(the validation split's {manifest['splits']['validation']['rows']:,} cannot tell configs apart)"
            )

        def judge(cfg: Config, run_dir: Path, on_epoch, stop: Callable[[], bool]) -> dict[str, Any]:
            """Train ``cfg`` and score it: on the validation split, or on each fold's held-out
            documents (all of train, each once); ``stop``: when to stop its training."""
            if k == 1:
                train(data_dir, run_dir, cfg, log=quiet, on_epoch=on_epoch, should_stop=stop)
                model = delivered(run_dir, validation, max_bytes)
                return {**task.scores(*validation_probs(model, validation), n_classes), "bytes": model_bytes(model)}
            probs = np.zeros((n_train, n_classes))
            labels = np.zeros((n_train, *validation.labels.shape[1:]), dtype=validation.labels.dtype)
            sizes = []
            for f, (fold_dir, held, fold_validation) in enumerate(fold_data):
                fold_run = run_dir / f"fold-{f}"
                # the pruner compares trials by their first fold's epochs
                train(fold_dir, fold_run, cfg, log=quiet, on_epoch=on_epoch if f == 0 else None, should_stop=stop)
                model = delivered(fold_run, fold_validation, max_bytes)
                probs[held], labels[held] = validation_probs(model, fold_validation)
                sizes.append(model_bytes(model))
                shutil.rmtree(fold_run, ignore_errors=True)
            return {**task.scores(probs, labels, n_classes), "bytes": max(sizes)}

        def objective(trial) -> float:
            nonlocal best
            cfg = suggest(trial, base, several)
            row = {"trial": trial.number, **trial.params, "state": "complete", metric: None, "seconds": None}
            if trial.number == 0:  # exactly the config given (the search knows an "auto" embedding size as 64)
                cfg = base
                row["model.embed_dim"] = base.model.embed_dim
            cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=seed))
            run_dir = work / f"trial-{trial.number}"
            trial_started = time.perf_counter()
            if max_bytes is not None:
                row["bytes"] = None

            def on_epoch(result) -> None:
                trial.report(result.val_loss if direction == "minimize" else result.val_score, result.epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned

            try:
                # the budget never cuts trial 0 (the config given): tune ends with at least what
                # train gives; only a stop asked for (Ctrl-C) does
                score = judge(cfg, run_dir, on_epoch, should_stop if trial.number == 0 else out_of_time)
            except optuna.TrialPruned:
                row["state"] = "pruned"
                raise
            except DivergedError:
                row["state"] = "diverged"
                raise optuna.TrialPruned from None  # recorded as failed; the search goes on
            except TooLarge as exc:  # one feature's model does not fit: no config's will
                row["state"] = "too large"
                raise InputError(
                    f"--max-size {max_bytes:,} bytes: a model of one feature takes {exc.smallest:,} bytes "
                    "here; give at least that"
                ) from None
            except Interrupted:
                row["state"] = "stopped"
                shutil.rmtree(run_dir, ignore_errors=True)
                study.stop()
                raise optuna.TrialPruned from None
            finally:
                row["seconds"] = round(time.perf_counter() - trial_started, 2)
                rows.append(row)
                if k > 1:  # a fold's run is scored, not kept
                    shutil.rmtree(run_dir, ignore_errors=True)
                    # all of train takes k/(k-1) a fold's time: keep that back, and a quarter more
                    final_s[0] = max(final_s[0], 1.25 * row["seconds"] / (k - 1))
                if row["state"] != "complete":
                    on_trial(row, best)
            row[metric] = score[metric]
            if max_bytes is not None:
                row["bytes"] = score["bytes"]
            per_doc[trial.number] = score["per_doc"][metric]
            if trial.number == 0:
                given.update(row, config=cfg.to_dict())
                if out_of_time() and not should_stop():
                    only_given.append(row["seconds"])
            if best is None or _beats(score[metric], best[metric], direction):
                if best is not None and best["trial"] != 0:
                    shutil.rmtree(work / f"trial-{best['trial']}", ignore_errors=True)
                best = {**row, "config": cfg.to_dict()}
            elif trial.number != 0:  # the config given is kept to the end (see _choose)
                shutil.rmtree(run_dir, ignore_errors=True)
            on_trial(row, best)
            if out_of_time():
                study.stop()
            return score[metric]

        try:
            with warnings.catch_warnings():  # e.g. a config given outside the search space: no news
                warnings.filterwarnings("ignore", category=UserWarning, module="optuna")
                study.optimize(objective, n_trials=trials, timeout=budget, catch=())
        except KeyboardInterrupt:  # a second Ctrl-C (the first, during trial 0): the best so far is kept
            interrupted.append(True)
        if best is None:
            if interrupted or should_stop():
                raise Interrupted(f"interrupted before any trial finished; nothing was written to {out_dir}")
            if rows and rows[0]["state"] == "diverged":
                raise DivergedError(
                    f"the config given (trial 0) diverged and no other trial finished within --budget {budget:g} s; "
                    "lower train.lr, or give more time"
                )
            raise InputError(f"no trial finished within --budget {budget:g} s; give it more time")
        completed = sum(r["state"] == "complete" for r in rows)
        chosen, why = _choose(best, given, metric, direction, per_doc, completed, judged)
        if only_given:
            why += f"; the budget allowed only the config given (trial 0 took {only_given[0]:.1f} s of {budget:g} s)"
        log(why)
        if k > 1:  # the folds chose a config; its model learns from all of train
            chosen, why = _train_chosen(chosen, given, why, data_dir, work, log)
        try:
            model = delivered(work / f"trial-{chosen['trial']}", validation, max_bytes)  # with folds: a new model
        except TooLarge as exc:
            raise InputError(
                f"--max-size {max_bytes:,} bytes: the chosen model takes {exc.smallest:,} with one feature"
            ) from None
        _commit(model, out_dir, chosen, rows, metric, k, max_bytes, budget, started)
        delivered_bytes, compressed = model_bytes(out_dir), model.name == "small"
    return {
        "metric": metric,
        "judged_by": "validation" if k == 1 else f"{k}-fold cross-validation of train",
        "best": {key: value for key, value in chosen.items() if key != "config"},
        "chosen_because": why,
        "trials": rows,
        "seconds": round(time.perf_counter() - started, 2),
        "out": str(out_dir),
        "model": {"bytes": delivered_bytes, "compressed": compressed},
    }


def _train_chosen(
    chosen: dict[str, Any], given: dict[str, Any], why: str, data_dir: Path, work: Path, log: Callable[[str], None]
) -> tuple[dict[str, Any], str]:
    """Train the config the folds chose on the whole train split, into its trial directory (as
    ``train`` does; a second Ctrl-C aborts). One that diverges there gives way to the config given."""
    from .run import train

    log("training the chosen config on the whole train split")
    try:
        train(data_dir, work / f"trial-{chosen['trial']}", config_from_dict(chosen["config"]), log=lambda m: None)
        return chosen, why
    except DivergedError:
        if not given or chosen["trial"] == given["trial"]:
            raise
    why = f"trial {chosen['trial']} diverged on the whole train split; kept the config given"
    log(why)
    train(data_dir, work / f"trial-{given['trial']}", config_from_dict(given["config"]), log=lambda m: None)
    return given, why


def _beats(a: float, b: float, direction: str) -> bool:
    return a > b if direction == "maximize" else a < b


def _choose(
    best: dict[str, Any],
    given: dict[str, Any],
    metric: str,
    direction: str,
    per_doc: dict[int, Any],
    completed: int,
    judged: str = "on validation",
) -> tuple[dict[str, Any], str]:
    """The best trial replaces the config given only when it does better (``judged``) by more
    than luck would give the best of ``completed`` equally good configs: the per-document
    difference's standard error times sqrt(2 ln k), the expected maximum of k standard normal
    draws. The best of many trials judged on one validation split is partly luck (on agnews7k
    with 486 validation documents, 116 trials' best was 0.021 ahead on validation and 0.006
    behind on test); the config given is the prior, and a config that is really better (a
    corpus the defaults do not suit) clears the bar by far."""
    if not given or best["trial"] == 0:
        return best, f"chose trial {best['trial']}: {metric} {best[metric]:.4f} {judged}"
    import numpy as np

    difference = np.asarray(per_doc[best["trial"]]) - np.asarray(per_doc[given["trial"]])
    se = float(difference.std() / math.sqrt(max(len(difference), 1)))
    bar = se * math.sqrt(2 * math.log(max(completed, 2)))
    margin = abs(best[metric] - given[metric])
    if margin > bar:
        return best, (
            f"chose trial {best['trial']}: {metric} {best[metric]:.4f} {judged}, ahead of the config "
            f"given ({given[metric]:.4f}) by more than luck among {completed} trials would give ({bar:.4f})"
        )
    return given, (
        f"kept the config given (trial 0, {metric} {given[metric]:.4f} {judged}): the best, trial "
        f"{best['trial']} ({best[metric]:.4f}), is not ahead by more than luck among {completed} trials "
        f"would give ({bar:.4f})"
    )


def _commit(
    best_dir: Path,
    out_dir: Path,
    best: dict[str, Any],
    rows: list[dict[str, Any]],
    metric: str,
    folds: int,
    max_bytes: int | None,
    budget: float,
    started: float,
) -> None:
    """The best trial's run becomes ``out_dir`` (atomically), its model.json saying it was
    tuned, with its config (``tuned.toml``) and every trial (``trials.jsonl``) beside it."""
    from ..model.meta import read_meta
    from ..util.fs import atomic_write_json
    from ..util.schema import sealed

    meta = read_meta(best_dir)
    meta.pop("json_sha256", None)
    meta["tuned"] = {
        "metric": metric,
        "on": "validation" if folds == 1 else "train folds",
        **({} if folds == 1 else {"folds": folds}),
        **({} if max_bytes is None else {"max_bytes": max_bytes}),
        "value": best[metric],
        "trial": best["trial"],
        "trials": len(rows),
        "budget_s": budget,
        "seconds": round(time.perf_counter() - started, 2),
    }
    with atomic_directory(out_dir, is_run_dir, "a classify run directory") as tmp:
        for path in best_dir.iterdir():
            if path.is_file() and path.name not in (".lock", META):
                shutil.copy2(path, tmp / path.name)
        if best_dir.name == "small":  # compressed: the training curves are still those of its run
            shutil.copy2(best_dir.parent / METRICS_LOG, tmp / METRICS_LOG)
        atomic_write_bytes(tmp / TUNED, to_toml(config_from_dict(best["config"])).encode())
        atomic_write_bytes(tmp / TRIALS, "".join(json.dumps(r) + "\n" for r in rows).encode())
        atomic_write_json(tmp / META, sealed(meta))  # the commit point, as in save_bundle
