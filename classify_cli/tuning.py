"""``classify tune``: the best config a wall-time budget finds, judged on the validation split.

Optuna's TPE sampler proposes a config (its first trial is the config given, so the search
never ends below it on validation); ``run.train`` trains it like ``train`` does, into a trial
directory beside the output; the trial's best epoch is scored on the validation split. A
median pruner stops trials whose validation numbers after an epoch trail the trials before
them. The test split is never read. The best trial's run directory becomes the output, with
``tuned.toml`` (its config) and ``trials.jsonl`` beside the model.
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

from .config import Config, config_from_dict, to_toml
from .errors import DivergedError, EnvironmentFailure, InputError, Interrupted
from .fsutil import atomic_directory, atomic_write_bytes, check_replaceable, scratch_directory
from .metrics import METRICS, TUNABLE

TUNED = "tuned.toml"
TRIALS = "trials.jsonl"
# a trial is at least start-up plus an epoch: about 2 s, plus half a microsecond a train token
# (this machine: agnews7k's 248k tokens, 2.2 s; 1M documents' 41M tokens, 22 s)
TRIAL_FLOOR_S, TRIAL_S_PER_TOKEN = 2.0, 5e-7


def suggest(trial, base: Config) -> Config:
    """``base`` with the settings that matter drawn by ``trial`` (names as in a config file)."""
    model = {
        "embed_dim": trial.suggest_categorical("model.embed_dim", [16, 32, 64, 128]),
        "ngrams": trial.suggest_int("model.ngrams", 1, 3),
        "weighting": trial.suggest_categorical("model.weighting", ["mean", "tfidf", "tfidf-l2"]),
        "supervised_weight": trial.suggest_float("model.supervised_weight", 0.0, 8.0),
        "ngram_weight": trial.suggest_float("model.ngram_weight", 0.25, 1.0),
    }
    train = {
        "lr": trial.suggest_float("train.lr", 0.25, 32.0, log=True),
        "batch_size": trial.suggest_categorical("train.batch_size", ["auto", 16, 32, 64, 128, 256, 512]),
        "gamma": trial.suggest_float("train.gamma", 0.5, 1.0),
        "patience": trial.suggest_int("train.patience", 1, 3),
    }
    return dataclasses.replace(
        base,
        model=dataclasses.replace(base.model, **model),
        train=dataclasses.replace(base.train, **train),
    )


def _as_params(cfg: Config) -> dict[str, Any]:
    """``cfg``'s values of the searched settings, under their trial names (the first trial's)."""
    model, train = dataclasses.asdict(cfg.model), dataclasses.asdict(cfg.train)
    params = {f"model.{k}": model[k] for k in ("ngrams", "weighting", "supervised_weight", "ngram_weight")}
    params |= {f"train.{k}": train[k] for k in ("lr", "batch_size", "gamma", "patience")}
    # "auto" is no choice of the search's: the first trial starts from 64 dimensions
    params["model.embed_dim"] = model["embed_dim"] if model["embed_dim"] in (16, 32, 64, 128) else 64
    return params


def check_tune_inputs(data_dir: Path, out_dir: Path, budget: float, metric: str) -> dict[str, Any]:
    """Refuse before any work what cannot be tuned; returns the prepared data's manifest."""
    from .prepared import read_manifest
    from .run import is_run_dir

    if metric not in TUNABLE:
        raise InputError(f"unknown metric {metric!r} (one of {', '.join(TUNABLE)})")
    manifest = read_manifest(Path(data_dir))
    if manifest["splits"]["validation"]["rows"] == 0:
        raise InputError(f"{data_dir} has no validation documents: tune judges configs on them")
    floor = TRIAL_FLOOR_S + TRIAL_S_PER_TOKEN * manifest["splits"]["train"]["tokens"]
    if not math.isfinite(budget) or budget < floor:
        raise InputError(
            f"--budget {budget:g}: one trial on {manifest['splits']['train']['rows']:,} train documents "
            f"takes about {floor:.0f} s; give at least that"
        )
    check_replaceable(out_dir, is_run_dir, "a classify run directory")
    return manifest


def validation_score(run_dir: Path, data_dir: Path) -> dict[str, float]:
    """The trial's model on the validation split: the metrics ``tune`` may optimize."""
    import numpy as np

    from .bundle import load_bundle
    from .inference import Predictor, softmax
    from .metrics import Outcome
    from .prepared import load_prepared

    predictor = Predictor(load_bundle(run_dir))
    data = load_prepared(Path(data_dir), ("validation",))
    split = data.splits["validation"]
    logits = predictor.logits_from_ids(split.ids.astype("int64"), split.offsets)
    probs = softmax(logits.astype("float64"))
    outcome = Outcome.of(probs, split.labels, len(data.labels))
    scores: dict[str, Any] = {name: METRICS[name].fn(outcome) for name in TUNABLE}
    # each document's part, for comparing two trials document by document (``_choose``):
    # correct or not (accuracy, and macro F1's nearest per-document stand-in), its loss
    docs = np.arange(len(split.labels))
    correct = (probs.argmax(axis=1) == split.labels).astype(np.float64) if len(docs) else np.zeros(0)
    scores["per_doc"] = {
        "accuracy": correct,
        "macro_f1": correct,
        "loss": -np.log(np.maximum(probs[docs, split.labels], 1e-15)),
    }
    return scores


def tune(
    data_dir: Path,
    out_dir: Path,
    base: Config,
    *,
    budget: float,
    trials: int | None,
    metric: str,
    seed: int,
    log: Callable[[str], None] = print,
    on_trial: Callable[[dict[str, Any], dict[str, Any] | None], None] = lambda row, best: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """Search configs for ``budget`` seconds (or ``trials`` trials), then make the chosen trial's
    model the run in ``out_dir`` (the best, unless within noise of the config given: ``_choose``).
    Returns the trials and the chosen one."""
    try:
        import optuna
    except ImportError:
        raise EnvironmentFailure("classify tune needs Optuna: pip install optuna (the tune extra)") from None
    from .run import train

    started = time.perf_counter()
    out_dir = Path(out_dir)
    check_tune_inputs(data_dir, out_dir, budget, metric)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    direction = "maximize" if METRICS[metric].higher_is_better else "minimize"
    study = optuna.create_study(
        direction=direction,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),  # epoch 1 is noisy
    )
    study.enqueue_trial(_as_params(base))  # the config given comes first
    rows: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    given: dict[str, Any] = {}  # trial 0, the config given, once it completed
    per_doc: dict[int, Any] = {}  # each trial's per-document validation scores (kept: a few KB a trial)

    def out_of_time() -> bool:
        return should_stop() or time.perf_counter() - started > budget

    with scratch_directory(out_dir) as work:

        def objective(trial) -> float:
            nonlocal best
            cfg = suggest(trial, base)
            cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=seed))
            run_dir = work / f"trial-{trial.number}"
            trial_started = time.perf_counter()
            row = {"trial": trial.number, **trial.params, "state": "complete", metric: None, "seconds": None}

            def on_epoch(result) -> None:
                trial.report(result.val_loss if direction == "minimize" else result.val_accuracy, result.epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned

            try:
                train(data_dir, run_dir, cfg, log=lambda message: None, on_epoch=on_epoch, should_stop=out_of_time)
                score = validation_score(run_dir, data_dir)
            except optuna.TrialPruned:
                row["state"] = "pruned"
                raise
            except DivergedError:
                row["state"] = "diverged"
                raise optuna.TrialPruned from None  # recorded as failed; the search goes on
            except Interrupted:
                row["state"] = "stopped"
                shutil.rmtree(run_dir, ignore_errors=True)
                study.stop()
                raise optuna.TrialPruned from None
            finally:
                row["seconds"] = round(time.perf_counter() - trial_started, 2)
                rows.append(row)
                if row["state"] != "complete":
                    on_trial(row, best)
            row[metric] = score[metric]
            per_doc[trial.number] = score["per_doc"][metric]
            if trial.number == 0:
                given.update(row, config=cfg.to_dict())
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
        except KeyboardInterrupt:  # a second Ctrl-C: the best so far is still kept
            pass
        if best is None:
            raise InputError(f"no trial finished within --budget {budget:g} s; give it more time")
        completed = sum(r["state"] == "complete" for r in rows)
        chosen, why = _choose(best, given, metric, direction, per_doc, completed)
        log(why)
        _commit(work / f"trial-{chosen['trial']}", out_dir, chosen, rows, metric, budget, started)
    return {
        "metric": metric,
        "best": {k: v for k, v in chosen.items() if k != "config"},
        "chosen_because": why,
        "trials": rows,
        "seconds": round(time.perf_counter() - started, 2),
        "out": str(out_dir),
    }


def _beats(a: float, b: float, direction: str) -> bool:
    return a > b if direction == "maximize" else a < b


def _choose(
    best: dict[str, Any],
    given: dict[str, Any],
    metric: str,
    direction: str,
    per_doc: dict[int, Any],
    completed: int,
) -> tuple[dict[str, Any], str]:
    """The best trial replaces the config given only when it does better on validation by more
    than luck would give the best of ``completed`` equally good configs: the per-document
    difference's standard error times sqrt(2 ln k), the expected maximum of k standard normal
    draws. The best of many trials judged on one validation split is partly luck (on agnews7k
    with 486 validation documents, 116 trials' best was 0.021 ahead on validation and 0.006
    behind on test); the config given is the prior, and a config that is really better (a
    corpus the defaults do not suit) clears the bar by far."""
    if not given or best["trial"] == 0:
        return best, f"chose trial {best['trial']}: {metric} {best[metric]:.4f} on validation"
    import numpy as np

    difference = np.asarray(per_doc[best["trial"]]) - np.asarray(per_doc[given["trial"]])
    se = float(difference.std() / math.sqrt(max(len(difference), 1)))
    bar = se * math.sqrt(2 * math.log(max(completed, 2)))
    margin = abs(best[metric] - given[metric])
    if margin > bar:
        return best, (
            f"chose trial {best['trial']}: {metric} {best[metric]:.4f} on validation, ahead of the config "
            f"given ({given[metric]:.4f}) by more than luck among {completed} trials would give ({bar:.4f})"
        )
    return given, (
        f"kept the config given (trial 0, {metric} {given[metric]:.4f} on validation): the best, trial "
        f"{best['trial']} ({best[metric]:.4f}), is not ahead by more than luck among {completed} trials "
        f"would give ({bar:.4f})"
    )


def _commit(
    best_dir: Path,
    out_dir: Path,
    best: dict[str, Any],
    rows: list[dict[str, Any]],
    metric: str,
    budget: float,
    started: float,
) -> None:
    """The best trial's run becomes ``out_dir`` (atomically), its model.json saying it was
    tuned, with its config (``tuned.toml``) and every trial (``trials.jsonl``) beside it."""
    from .bundle import META, read_meta
    from .fsutil import atomic_write_json
    from .run import is_run_dir
    from .schema import sealed

    meta = read_meta(best_dir)
    meta.pop("json_sha256", None)
    meta["tuned"] = {
        "metric": metric,
        "on": "validation",
        "value": best[metric],
        "trial": best["trial"],
        "trials": len(rows),
        "budget_s": budget,
        "seconds": round(time.perf_counter() - started, 2),
    }
    with atomic_directory(out_dir, is_run_dir, "a classify run directory") as tmp:
        for path in best_dir.iterdir():
            if path.name not in (".lock", META):
                shutil.copy2(path, tmp / path.name)
        atomic_write_bytes(tmp / TUNED, to_toml(config_from_dict(best["config"])).encode())
        atomic_write_bytes(tmp / TRIALS, "".join(json.dumps(r) + "\n" for r in rows).encode())
        atomic_write_json(tmp / META, sealed(meta))  # the commit point, as in save_bundle
