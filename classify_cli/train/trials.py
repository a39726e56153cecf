"""One trial of ``tune``: the search space a trial's config comes from, and how a trained trial
is judged (its probabilities on held-out documents, scored) and made small enough to deliver."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..model.task import task_of
from ..util.config import Config

# below this many validation documents, one split cannot tell configs apart (a document is
# over 0.3% of accuracy): judge by k-fold cross-validation of train, where train is small
# enough for k trainings a trial
FOLDS, FOLDS_BELOW_VALIDATION, FOLDS_UP_TO_TRAIN = 5, 300, 20_000


def folds_for(splits: dict[str, Any], folds: int | None) -> int:
    """How many folds judge a trial: ``folds`` as given, else (auto) ``FOLDS`` for a small
    validation split with a train split small enough, else 1 (the validation split)."""
    if folds is not None:
        return folds
    small = splits["validation"]["rows"] < FOLDS_BELOW_VALIDATION and splits["train"]["rows"] <= FOLDS_UP_TO_TRAIN
    return FOLDS if small else 1


def default_metric(data_dir: Path) -> str:
    """What trials are judged by when none is named: the task's first (accuracy, or micro-F1)."""
    from ..data.prepared import read_manifest

    return task_of(read_manifest(Path(data_dir))).main_metric


# model.json's "tuned" entry takes about 300 bytes
TUNED_ROOM = 512


def weightings(several: bool) -> list[str]:
    """The weightings searched: for several labels per text, tfidf-sum in place of tfidf."""
    return ["mean", "tfidf-l2", "tfidf-sum"] if several else ["mean", "tfidf", "tfidf-l2"]


def suggest(trial, base: Config, several: bool = False) -> Config:
    """``base`` with the settings that matter drawn by ``trial`` (names as in a config file);
    ``several``: the data has several labels per text."""
    model: dict[str, Any] = {}
    if base.model.vectors is not None:  # with the vectors given, or without any
        with_vectors = trial.suggest_categorical("model.vectors", [base.model.vectors, "none"]) != "none"
        model["vectors"] = base.model.vectors if with_vectors else None
    model["embed_dim"] = trial.suggest_categorical("model.embed_dim", [16, 32, 64, 128])  # (after any vectors')
    model |= {
        "ngrams": trial.suggest_int("model.ngrams", 1, 3),
        "weighting": trial.suggest_categorical("model.weighting", weightings(several)),
        "supervised_weight": trial.suggest_float("model.supervised_weight", 0.0, 8.0),
        "ngram_weight": trial.suggest_float("model.ngram_weight", 0.25, 1.0),
    }
    train = {
        "lr": trial.suggest_float("train.lr", 0.25, 32.0, log=True),
        "batch_size": trial.suggest_categorical("train.batch_size", ["auto", 16, 32, 64, 128, 256, 512]),
        "gamma": trial.suggest_float("train.gamma", 0.5, 1.0),
        "patience": trial.suggest_int("train.patience", 1, 3),
    }
    if several:
        train["pos_weight"] = trial.suggest_float("train.pos_weight", 1.0, 16.0, log=True)
    return dataclasses.replace(
        base,
        model=dataclasses.replace(base.model, **model),
        train=dataclasses.replace(base.train, **train),
    )


def as_params(cfg: Config, several: bool = False) -> dict[str, Any]:
    """``cfg``'s values of the searched settings, under their trial names (the first trial's)."""
    from ..model.features import weighting_for

    model, train = dataclasses.asdict(cfg.model), dataclasses.asdict(cfg.train)
    params = {f"model.{k}": model[k] for k in ("ngrams", "weighting", "supervised_weight", "ngram_weight")}
    params["model.weighting"] = weighting_for(model["weighting"], several)  # "auto" as the task resolves it
    params |= {f"train.{k}": train[k] for k in ("lr", "batch_size", "gamma", "patience", *(["pos_weight"] * several))}
    if model["vectors"] is not None:
        params["model.vectors"] = model["vectors"]
    # "auto" is no choice of the search's: the first trial starts from 64 dimensions
    params["model.embed_dim"] = model["embed_dim"] if model["embed_dim"] in (16, 32, 64, 128) else 64
    return params


class TooLarge(Exception):
    """A trial's model does not fit in ``--max-size``, even with one feature (``smallest``
    bytes, the ``tuned`` entry's room included)."""

    def __init__(self, smallest: int) -> None:
        super().__init__(smallest)
        self.smallest = smallest


def delivered(run_dir: Path, validation, max_bytes: int | None) -> Path:
    """The trial's model as ``tune`` would deliver it: ``run_dir`` when it fits in ``max_bytes``,
    else compressed (``compress``) into ``run_dir/small`` with the most features that fit
    (``validation``, its data's validation split, gives the compressed model's reference)."""
    if max_bytes is None:
        return run_dir
    from ..model.bundle import bundle_bytes, load_bundle, save_bundle
    from .compress import compressed, compressed_to_fit, feature_order, model_bytes

    room = max_bytes - TUNED_ROOM  # model.json gains the "tuned" entry at the end
    if model_bytes(run_dir) <= room:
        return run_dir
    bundle = load_bundle(run_dir)
    small = compressed_to_fit(bundle, room, validation, "classify tune (--max-size)")
    if small is None:
        one = compressed(bundle, feature_order(bundle)[:1], "int8", validation, "classify tune (--max-size)")
        raise TooLarge(bundle_bytes(*one) + TUNED_ROOM)
    save_bundle(run_dir / "small", *small)
    return run_dir / "small"


def validation_probs(run_dir: Path, split):
    """The trial's model's probabilities for the documents of ``split`` (its data's validation
    split, or a fold's held-out part), and their labels."""
    from ..model.bundle import load_bundle
    from ..model.inference import Predictor

    return Predictor(load_bundle(run_dir)).split_probabilities(split), split.labels
