"""``classify compress``: a small model from a trained one, as fastText's ``quantize -cutoff``.

A feature's row of class scores (IDF folded in) is all it adds to a document's logits, and
softmax ignores what it adds to every class alike; so the features that matter least are
those whose rows, centered, are shortest (not centered for a set of labels per text: each
label's sigmoid reads its own logit). ``compress`` keeps the ``max_features`` longest rows
(words and n-gram buckets alike), stores the table as float16 or int8 (one float32 scale per
row), and keeps in the vocabulary table only the words that kept a row. A dropped word is
then unknown to the model, as a word training never saw, and a dropped n-gram shares the
zero row of unseen ones. The result is an ordinary bundle that ``predict`` and ``evaluate``
read; it keeps no training state, so it cannot be resumed. No torch here.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..model.bundle import Bundle, load_bundle, save_bundle
from ..model.head import describe, spec_of, vocab_table
from ..model.inference import Predictor
from ..model.meta import DTYPES, is_compressed, read_meta
from ..model.rundir import META, MODEL_FILE
from ..model.task import task_of
from ..serve.evaluation import validation_fields
from ..text.token_table import TokenTable
from ..util.errors import InputError
from ..util.lock import DirectoryLock
from ..util.swap import atomic_directory, check_replaceable

COMPRESSED_MODEL = "a compressed model alone"
DEFAULT_MAX_FEATURES = 75_000  # about 3.5 MB at int8, however large the vocabulary


def is_compressed_output(path: Path) -> bool:
    """A directory ``compress`` wrote and nothing else did: a compressed bundle alone (a run
    directory, or PNGs drawn into the output since, make it someone else's to keep)."""
    names = {p.name for p in Path(path).iterdir()}
    return is_compressed(path) and all(n == META or MODEL_FILE.fullmatch(n) for n in names)


def compress(
    run_dir: Path,
    out: Path,
    max_features: int | None = None,
    dtype: str = "int8",
    data: Path | None = None,
    max_bytes: int | None = None,
) -> dict[str, Any]:
    """Write a compressed copy of the model in ``run_dir`` to ``out``; return sizes and accuracies.
    It keeps the ``max_features`` most important features, or as many as fit in ``max_bytes``
    (model.json and the weights file), or else ``DEFAULT_MAX_FEATURES``."""
    if max_features is not None and max_bytes is not None:
        raise InputError("give --max-features or --max-size, not both")
    if max_features is not None and max_features < 1:
        raise InputError(f"--max-features must be at least 1 (got {max_features})")
    if max_bytes is not None and max_bytes < 1:
        raise InputError(f"--max-size must be at least 1 byte (got {max_bytes})")
    if dtype not in DTYPES:
        raise InputError(f"--dtype must be one of {', '.join(DTYPES)} (got {dtype!r})")
    run_dir, out = Path(run_dir), Path(out)
    if out.resolve() == run_dir.resolve():
        raise InputError("--out must differ from --model: compress writes a new bundle beside the original")
    with DirectoryLock(out, "compress") as lock:  # from the check to the swap: no other writer meanwhile
        out = lock.directory
        check_replaceable(out, is_compressed_output, COMPRESSED_MODEL)
        started = time.perf_counter()
        bundle = load_bundle(run_dir)
        if "compressed" in bundle.meta["head"]:
            raise InputError(f"{run_dir} is already compressed; compress the full model it came from")
        validation = _validation_split(bundle, data)

        origin = str(run_dir.resolve())
        if max_bytes is None:
            asked = max_features or DEFAULT_MAX_FEATURES
            tensors, meta = compressed(bundle, feature_order(bundle)[:asked], dtype, validation, origin, asked)
        else:
            tensors, meta = _to_fit(bundle, max_bytes, validation, origin, dtype)
        with atomic_directory(out, is_compressed_output, COMPRESSED_MODEL) as tmp:
            save_bundle(tmp, tensors, meta)
    sizes = {name: model_bytes(path) for name, path in (("before", run_dir), ("after", out))}
    summary = {
        "out": str(out),
        "features": {"before": features_of(bundle.meta), "after": features_of(meta)},
        "bytes": sizes,
        "dtype": dtype,
        **({"max_bytes": max_bytes} if max_bytes is not None else {}),
        "seconds": round(time.perf_counter() - started, 3),
    }
    if validation is not None:
        before, after = (_accuracy(Predictor(b), validation) for b in (bundle, load_bundle(out)))
        summary[f"validation_{task_of(meta).main_metric}"] = {"before": before[0], "after": after[0]}
        summary["validation_mean_confidence"] = {"before": before[1], "after": after[1]}
    return summary


def _to_fit(bundle: Bundle, max_bytes: int, validation, origin: str, dtype: str):
    """``compressed_to_fit``, or the error that says how small this model can get."""
    from ..model.bundle import bundle_bytes

    fitted = compressed_to_fit(bundle, max_bytes, validation, origin, dtype)
    if fitted is None:
        smallest = bundle_bytes(*compressed(bundle, feature_order(bundle)[:1], dtype, validation, origin))
        raise InputError(
            f"--max-size {max_bytes:,} bytes: this model takes {smallest:,} bytes with one feature at {dtype}"
        )
    return fitted


def features_of(meta: dict[str, Any]) -> int:
    """The features (words and n-gram buckets) with a row in a model's table."""
    return meta["head"]["kept_words"] + meta["head"]["kept_buckets"]


def compressed(
    bundle: Bundle, keep: np.ndarray, dtype: str, validation, origin: str, asked: int | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The tensors and model.json fields of ``bundle`` compressed to the features (table rows)
    ``keep``; ``validation`` (a split, or None) gives the new reference, ``origin`` says where
    it came from, ``asked`` how many features were asked for (default: as many as kept)."""
    max_features = len(keep) if asked is None else asked
    tensors = compress_tensors(bundle, keep, dtype)
    meta = {
        k: v for k, v in bundle.meta.items() if k not in ("format", "version", "classify_version", "created", "weights")
    }
    h = bundle.meta["head"]
    head = describe(tensors, spec_of(h), h["unk_index"], h["norm"])
    head["compressed"] = {"from": origin, "max_features": max_features, "dtype": dtype}
    meta["head"] = head
    meta["features"] = {**meta.get("features", {}), "kept_buckets": head["kept_buckets"]}
    meta.pop("reference", None)  # the full model's: dropped words now count as unknown
    if validation is not None:  # the smaller model's own reference and (several labels) threshold
        per_label = bool(meta.get("decision", {}).get("thresholds"))
        meta.update(validation_fields(Bundle(None, meta, tensors), validation, meta["labels"], per_label))
    return tensors, meta


def compressed_to_fit(
    bundle: Bundle, max_bytes: int, validation, origin: str, dtype: str = "int8"
) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """``bundle`` compressed with as many features as fit in ``max_bytes`` (model.json and the
    weights file), the most important first, or None when not even one does. Sizes grow with
    the features kept, so a bisection finds the most, sizing model.json with the full model's
    reference; the new reference's digits move it by a few bytes, so a last step or two makes
    it exact. The vocabulary's table grows in powers of two, so where the next word would
    double it, the room left takes the next n-gram buckets, which need no slot: the model then
    fills its budget (a 1.6 MB limit left 1.0 MB used on 1M documents: docs/benchmarks.md)."""
    from ..model.bundle import bundle_bytes

    def build(keep: np.ndarray, validation):
        tensors, meta = compressed(bundle, keep, dtype, validation, origin)
        if validation is None and "reference" in bundle.meta:  # as long, but for a digit or two
            meta["reference"] = bundle.meta["reference"]
        return tensors, meta

    def fits(keep: np.ndarray, validation=None) -> bool:
        return bundle_bytes(*build(keep, validation)) <= max_bytes

    def most(seq: np.ndarray, lo: int) -> int:
        """The longest prefix of ``seq`` that fits, knowing ``seq[:lo]`` does (or lo is 0)."""
        hi = len(seq)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if fits(seq[:mid]) else (lo, mid - 1)
        return lo

    order = feature_order(bundle)
    n = most(order, 0)
    if not n:
        return None
    rest = order[n:]
    seq = np.concatenate([order[:n], rest[rest >= bundle.meta["head"]["kept_words"]]])
    n = most(seq, n)
    while n and not fits(seq[:n], validation):
        n -= 1
    while n and n < len(seq) and fits(seq[: n + 1], validation):
        n += 1
    return build(seq[:n], validation) if n else None


def smallest_bytes(labels: list[str]) -> int:
    """Fewer bytes than any model with these labels takes, compressed to one feature: its
    weights (the vocabulary's table has at least 1,024 slots) and a model.json of at least 2 KB."""
    from ..util import safetensors

    table = TokenTable.build([], [], -1).arrays()
    n = len(labels)
    tensors = {f"vocab.{k}": v for k, v in table.items()} | {
        "bias": np.zeros(n, np.float32),
        "scores": np.zeros((2, n), np.int8),
        "scale": np.zeros(2, np.float32),
        "norm_terms": np.zeros(2, np.float32),
        "ngram_buckets": np.zeros(1, np.int32),
        "kept_words": np.zeros(0, np.int32),
    }
    header, arrays = safetensors.layout(tensors)
    return len(header) + sum(a.nbytes for a in arrays) + 2000 + sum(3 * len(label.encode()) for label in labels)


def feature_order(bundle: Bundle) -> np.ndarray:
    """The table's rows (words, then n-gram buckets; not the shared row), most important first."""
    scores = np.asarray(bundle.tensors["scores"], dtype=np.float32)[:-1]
    centered = scores - scores.mean(axis=1, keepdims=True) if task_of(bundle.meta).shift_invariant else scores
    return np.argsort(-np.einsum("ij,ij->i", centered, centered), kind="stable")


def compress_tensors(bundle: Bundle, keep: np.ndarray, dtype: str) -> dict[str, np.ndarray]:
    """Rows ``keep`` of the table (and the shared row, last), quantized, with their vocabulary."""
    t, h = bundle.tensors, bundle.meta["head"]
    scores = np.asarray(t["scores"], dtype=np.float32)[:-1]
    n_words = h["kept_words"]
    keep = np.sort(np.asarray(keep, dtype=np.int64))
    word_rows, bucket_rows = keep[keep < n_words], keep[keep >= n_words] - n_words
    rows = np.concatenate([keep, [len(scores)]])  # the shared row stays last
    kept = np.asarray(t["scores"], dtype=np.float32)[rows]
    out: dict[str, np.ndarray] = {"bias": np.asarray(t["bias"], dtype=np.float32)}
    if dtype == "int8":
        scale = (np.abs(kept).max(axis=1) / 127).astype(np.float32)
        safe = np.where(scale > 0, scale, 1.0)
        out["scores"] = np.clip(np.rint(kept / safe[:, None]), -127, 127).astype(np.int8)
        out["scale"] = scale
    else:
        out["scores"] = kept.astype(dtype)
    out["norm_terms"] = np.asarray(t["norm_terms"], dtype=np.float32)[rows]  # float32: idf² passes float16's range
    out["ngram_buckets"] = np.asarray(t["ngram_buckets"], dtype=np.int32)[bucket_rows]
    old_words = np.asarray(t["kept_words"]) if "kept_words" in t else np.arange(n_words, dtype=np.int32)
    words = old_words[word_rows].astype(np.int32)
    out["kept_words"] = words
    # the vocabulary keeps the words with a row, under their own ids (n-grams hash those ids)
    vocab = vocab_table(t, -1)
    tokens, ids = vocab.items()
    has_row = np.isin(ids, words)
    table = TokenTable.build([tok for tok, keep_it in zip(tokens, has_row, strict=True) if keep_it], ids[has_row], -1)
    out |= {f"vocab.{k}": v for k, v in table.arrays().items()}
    return out


def _validation_split(bundle: Bundle, data: Path | None):
    """The validation split of the model's prepared data (or ``data``), or None when it is gone."""
    from ..data.prepared import MANIFEST, load_prepared, vocab_matches

    path = Path(data) if data is not None else Path((bundle.meta.get("data") or {}).get("path") or "")
    ours = vocab_matches(path, bundle.meta["data"].get("vocab_sha256"))
    if data is None and not ours:  # the recorded data is gone or was prepared again
        return None
    if not (path / MANIFEST).is_file():
        raise InputError(f"--data {data} is not prepared data")
    if not ours:
        raise InputError(f"the prepared data at {path} has another vocabulary than the model")
    return load_prepared(path, ("validation",)).splits["validation"]


def _accuracy(predictor: Predictor, split) -> tuple[float, float]:
    """The task's main metric (accuracy; micro-F1 for a set of labels) and mean confidence on ``split``."""
    if not len(split):
        return 0.0, 0.0
    report = predictor.task.report(predictor.split_probabilities(split), split.labels, predictor.labels)
    return report[predictor.task.main_metric], report["mean_confidence"]


def model_bytes(run_dir: Path) -> int:
    meta = read_meta(run_dir)
    return (run_dir / META).stat().st_size + (run_dir / meta["weights"]["file"]).stat().st_size
