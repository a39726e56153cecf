"""Measuring a trained model on labeled data (prepared splits or raw files)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..inputs.readers import label_set
from ..model.bundle import Bundle, load_bundle
from ..model.inference import Predictor
from ..model.metrics import HIGHER_IS_BETTER, LOWER_IS_BETTER, UNBOUNDED
from ..model.task import TASKS
from ..util.config import PrepareConfig
from ..util.display import listed
from ..util.errors import BundleError, InputError
from ..util.parallel import parallel_map
from ..util.ragged import fingerprints

CHUNK_ROWS = 4096  # rows read, tokenized and scored at a time: bounded memory, fast numpy


def default_data(model: Path) -> Path:
    """The data the model was trained on.

    No fallback when it is gone: another directory with the same vocabulary would be
    evaluated on without a word, and an error naming a path the user never gave misleads.
    """
    from ..model.meta import read_meta

    recorded = read_meta(model).get("data", {}).get("path")
    if not recorded:
        raise InputError(f"the model at {model} does not record its training data; pass --data")
    if not Path(recorded).is_dir():
        raise InputError(f"the model's training data at {recorded} is gone; pass --data")
    return Path(recorded)


def _prepared_rows(predictor: Predictor, meta: dict[str, Any], path: Path):
    """The test split of prepared data, as (ids, offsets, label names); vocabularies must match."""
    from ..data.prepared import load_prepared, vocab_matches

    if not vocab_matches(path, meta.get("data", {}).get("vocab_sha256")):
        raise BundleError(
            f"the prepared data at {path} has another vocabulary than the model was trained with; "
            "evaluate on the raw labeled files instead (--data FILE)"
        )
    data = load_prepared(path, ("test",))
    split = data.splits["test"]
    if split.labels.ndim == 2:  # a set of labels per text, as 0/1 per label: named, as a file's are
        names = [tuple(np.array(data.labels, dtype=object)[row.astype(bool)]) for row in split.labels]
    else:
        names = list(np.array(data.labels, dtype=object)[split.labels])
    return split.ids.astype(np.int64), split.offsets, names


def _prepare_config(meta: dict[str, Any], columns: dict[str, Any] | None = None) -> PrepareConfig:
    """How the model's training data was read (text and label columns), ``columns`` changed."""
    return PrepareConfig(**{**(meta.get("prepare") or {}), **(columns or {})})


def _parse_and_score(predictor: Predictor, chunk):
    rows = chunk.rows()  # in the worker: parsing CSV is as slow as scoring
    return [label for _, label in rows], predictor.score([text for text, _ in rows], prints=True)


def _raw_source(path: Path, meta: dict[str, Any], columns: dict[str, Any] | None):
    from ..inputs.sources import open_source

    source = open_source(str(path), _prepare_config(meta, columns))
    split = "test" if "test" in source.splits else "train"
    if len(source.splits) > 1 and split == "train":
        split = next(s for s in ("validation", "train") if s in source.splits)
    return source, split


def evaluate(
    model_dir: Path,
    data_path: Path,
    columns: dict[str, Any] | None = None,
    tick: Callable[[int], None] = lambda n: None,
) -> dict[str, Any]:
    """Report accuracy, F1, loss, calibration and the confusion matrix of a model on data
    (a labeled file's text and label columns as the model's training data, or ``columns``)."""
    bundle = load_bundle(model_dir)
    predictor = Predictor(bundle)
    labels = predictor.labels
    label_index = {name: i for i, name in enumerate(labels)}
    data_path = Path(data_path)
    if not data_path.exists():
        from ..inputs.sources import no_such_data

        raise no_such_data(str(data_path), "evaluate")

    logits_parts, truth_parts, prints_parts = [], [], []
    unknown: Counter[str] = Counter()
    tokens = unk_tokens = 0

    several = predictor.task.name == "multi_label"
    # a field of several labels is split where the model's training data was, else at "|" (as
    # predict writes them)
    sep = (columns or {}).get("label_sep") or (bundle.meta.get("prepare") or {}).get("label_sep") or "|"
    split_seen = False  # whether any label field held the separator

    def consume(logits: np.ndarray, n_tokens: int, n_unknown: int, names: list, prints: np.ndarray) -> None:
        nonlocal tokens, unk_tokens, split_seen
        tick(len(names))
        if several:  # every row is kept; a label the model does not know is counted, not scored
            keep = np.ones(len(names), dtype=bool)
            truth = np.zeros((len(names), len(labels)), dtype=np.uint8)
            for i, name in enumerate(names):
                split_seen = split_seen or (isinstance(name, str) and sep in name)
                try:
                    row = label_set(name, sep)
                except ValueError as exc:
                    raise InputError(f"evaluation data: {exc}") from None
                for one in row:
                    if one in label_index:
                        truth[i, label_index[one]] = 1
                    else:
                        unknown[one] += 1
        else:
            if any(isinstance(n, tuple) for n in names):
                raise InputError(
                    f"{data_path}: the labels are lists, and the model at {model_dir} gives one label per text "
                    "(several labels per text need a model trained on such data)"
                )
            keep = np.array([n in label_index for n in names], dtype=bool)
            for n in names:
                if n not in label_index:
                    unknown[n] += 1
            truth = np.array([label_index[n] for n in names if n in label_index], dtype=np.int64)
        prints_parts.append(prints[keep])
        logits_parts.append(logits[keep])
        truth_parts.append(truth)
        tokens += n_tokens
        unk_tokens += n_unknown

    from ..data.prepared import holds_prepared_manifest

    if holds_prepared_manifest(data_path):
        ids, offsets, names = _prepared_rows(predictor, bundle.meta, data_path)
        n_unknown = int((predictor.head.known_ids(ids) == predictor.unk_index).sum())
        consume(predictor.logits_from_ids(ids, offsets), len(ids), n_unknown, names, fingerprints(ids, offsets))
        description = f"{data_path} (prepared, test split)"
        kept = bundle.meta.get("vectors", {}).get("kept", 0)
        if kept:  # its ids know the train vocabulary only: a file's text reaches every word
            description = (
                f"{data_path} (prepared, test split: its words outside the train vocabulary are <unk>, "
                f"so the {kept:,} words the model knows from vectors alone go unused; evaluate a file to use them)"
            )
    else:
        from ..inputs.sources import labeled_chunks

        source, split = _raw_source(data_path, bundle.meta, columns)
        description = source.files.get(split) or source.description
        chunks = labeled_chunks(source, split, _prepare_config(bundle.meta, columns), CHUNK_ROWS)
        for _, (names, scored) in parallel_map(_parse_and_score, predictor, chunks):
            n_unknown = int((scored.tokens - scored.known).sum())
            consume(scored.logits, int(scored.tokens.sum()), n_unknown, names, scored.prints)

    logits = np.concatenate(logits_parts) if logits_parts else np.zeros((0, len(labels)), np.float32)
    truth = np.concatenate(truth_parts) if truth_parts else np.zeros((0, len(labels)) if several else 0, np.int64)
    if len(truth) == 0 or (several and unknown and not truth.any()):
        if unknown:
            hint = ""
            if all(name.isdigit() for name in unknown) and not any(name.isdigit() for name in labels):
                hint = "; class indices (AG News layout) need a classes.txt naming them beside the file"
            raise InputError(
                f"none of the labels in {data_path} are known to the model: data has {listed(sorted(unknown))}; "
                f"model knows {listed(labels)}{hint}"
            )
        raise InputError(f"{data_path}: no labeled rows to evaluate")
    if several and unknown and not split_seen:
        joined = [name for name in unknown if any(label in name and label != name for label in labels)]
        if joined:  # "Sports;Business": labels joined by another separator than the one split at
            raise InputError(
                f"{data_path}: labels such as {listed(joined[:3])} are the model's labels joined by another "
                f"separator than {sep!r}: give it with --label-sep"
            )
    probs = predictor.task.probabilities(logits)
    report = {"task": predictor.task.name, **predictor.task.report(probs, truth, labels)}
    if "decision" in bundle.meta:  # how the labels were decided: the threshold(s) chosen on validation
        report["decision"] = bundle.meta["decision"]
    report["model"] = str(model_dir)
    report["data"] = description
    # rows left out for a label the model does not know (with a set of labels: labels not scored)
    counted = "left_out" if several else "rows"
    report["unknown_labels"] = {counted: int(sum(unknown.values())), "labels": dict(unknown.most_common())}
    report["oov_rate"] = unk_tokens / tokens if tokens else 0.0
    report["drift"] = drift(report, bundle.meta.get("reference"))
    report["train_overlap"] = train_overlap(bundle.meta, np.concatenate(prints_parts))
    return report


def train_overlap(meta: dict[str, Any], prints: np.ndarray) -> dict[str, Any]:
    """How many evaluated rows are documents of the model's train split (the same tokens, by
    fingerprint): a model scored on what it learned looks better than it is. Needs the
    prepared data it was trained on; without it, says so."""
    from ..data.prepared import train_fingerprints, vocab_matches

    path = Path(meta["data"]["path"])
    try:
        if not vocab_matches(path, meta["data"]["vocab_sha256"]):
            raise BundleError("another vocabulary")
        train = train_fingerprints(path)
    except (BundleError, InputError, OSError):
        return {"rows": None, "note": f"not checked: the training data at {path} is gone or changed"}
    rows = int(np.isin(prints, train).sum())
    return {"rows": rows, "fraction": rows / len(prints) if len(prints) else 0.0}


# How far a batch may move from what the model saw in training before evaluate warns.
DRIFT_LIMITS = {"oov_rate": 0.05, "label_distribution": 0.15, "mean_confidence": 0.10}


def drift(report: dict[str, Any], reference: dict[str, Any] | None) -> dict[str, Any]:
    """Compare the batch with the training data: OOV rate, label mix, mean confidence."""
    if not reference:
        return {"warnings": [], "note": "model has no training reference (trained by an older version)"}
    labels = report["labels"]
    # each label's share of the labels given (one per text: of the texts)
    n = max(sum(report["per_class"][lab]["support"] for lab in labels), 1)
    batch_dist = {lab: report["per_class"][lab]["support"] / n for lab in labels}
    ref_dist = reference["label_distribution"]
    tv = 0.5 * sum(abs(batch_dist[lab] - ref_dist.get(lab, 0.0)) for lab in labels)
    out = {
        "oov_rate": {"batch": report["oov_rate"], "reference": reference["oov_rate"]},
        "mean_confidence": {"batch": report["mean_confidence"], "reference": reference["mean_confidence"]},
        "label_distribution": {"batch": batch_dist, "reference": ref_dist, "total_variation": tv},
        "limits": DRIFT_LIMITS,
        "warnings": [],
    }
    oov_up = report["oov_rate"] - reference["oov_rate"]
    if oov_up > DRIFT_LIMITS["oov_rate"]:
        out["warnings"].append(
            f"out-of-vocabulary rate {report['oov_rate']:.3f} is {oov_up:.3f} above training's {reference['oov_rate']:.3f}"
        )
    if tv > DRIFT_LIMITS["label_distribution"]:
        out["warnings"].append(f"label distribution moved: total variation {tv:.3f} from the training split's")
    confidence_drop = reference["mean_confidence"] - report["mean_confidence"]
    if confidence_drop > DRIFT_LIMITS["mean_confidence"]:
        out["warnings"].append(
            f"mean confidence {report['mean_confidence']:.3f} is {confidence_drop:.3f} below validation's "
            f"{reference['mean_confidence']:.3f}"
        )
    return out


def parse_threshold(text: str, allowed: tuple[str, ...], option: str) -> tuple[str, float]:
    """METRIC=VALUE, or VALUE alone for the model's main metric ("" here: ``Task.main_metric``)."""
    metric, sep, value = text.rpartition("=")
    metric = metric.strip()
    if sep and metric not in allowed:
        other = "--fail-over" if option == "--fail-under" else "--fail-under"
        hint = f" ({metric} is checked by {other})" if metric in (*HIGHER_IS_BETTER, *LOWER_IS_BETTER) else ""
        raise InputError(
            f"{option} expects METRIC=VALUE (or VALUE) with METRIC one of {', '.join(allowed)}; got {text!r}{hint}"
        )
    try:
        limit = float(value)
    except ValueError:
        raise InputError(f"{option} {metric or 'VALUE'}: {value!r} is not a number") from None
    # a limit the metric can never cross (nan, 2, -1) would pass or fail every run regardless of the model
    if metric in UNBOUNDED:
        if not (np.isfinite(limit) and limit >= 0):
            raise InputError(f"{option} {metric}: {value.strip()} is out of range (a finite number >= 0)")
    elif not 0.0 <= limit <= 1.0:  # also false for nan
        raise InputError(f"{option} {metric or 'VALUE'}: {value.strip()} is out of range (0 to 1)")
    return metric, limit


def check_thresholds(
    report: dict[str, Any], under: list[tuple[str, float]], over: list[tuple[str, float]]
) -> list[dict]:
    """One record per threshold, with whether the report passes it; a metric the model's task
    does not report is refused."""
    checks = []
    for option, limits in (("fail_under", under), ("fail_over", over)):
        for metric, limit in limits:
            if option == "fail_over" and not metric:
                raise InputError("--fail-over expects METRIC=VALUE")
            metric = metric or TASKS[report["task"]].main_metric
            if metric not in report:
                kind = "several labels" if report["task"] == "multi_label" else "one label"
                raise InputError(
                    f"--{option.replace('_', '-')} {metric}: a model of {kind} per text reports no {metric} "
                    f"(its main metric is {TASKS[report['task']].main_metric})"
                )
            actual = report[metric]
            passed = actual >= limit if option == "fail_under" else actual <= limit
            checks.append({"metric": metric, option: limit, "actual": actual, "passed": bool(passed)})
    return checks


def _finite(obj: Any) -> Any:
    """NaN and infinity are not JSON: they become null."""
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def dumps(report: dict[str, Any]) -> str:
    return json.dumps(_finite(report), allow_nan=False)


def validation_fields(bundle: Bundle, validation, labels: list[str], per_label: bool = False) -> dict[str, Any]:
    """model.json's fields measured on the validation split, its probabilities worked out once:
    ``reference`` (what `evaluate` compares new batches with: validation OOV rate and
    confidence, train label mix) and, for a set of labels per text, ``decision`` (the threshold,
    ``per_label`` too)."""
    from ..model.metrics import choose_threshold

    predictor = Predictor(bundle)
    probs = predictor.split_probabilities(validation)
    fields: dict[str, Any] = {}
    if predictor.task.name == "multi_label":
        fields["decision"] = choose_threshold(probs, validation.labels, labels, per_label)
    per_class = bundle.meta["data"]["per_class"]
    total = sum(per_class.values())
    fields["reference"] = {
        "oov_rate": float((predictor.head.known_ids(validation.ids) == predictor.unk_index).mean())
        if len(validation.ids)
        else 0.0,
        # as the task reports it for a batch, so the reference and the batch agree by construction
        "mean_confidence": predictor.task.report(probs, validation.labels, predictor.labels)["mean_confidence"]
        if len(probs)
        else 0.0,
        "label_distribution": {lab: per_class[lab] / total for lab in labels},
    }
    return fields
