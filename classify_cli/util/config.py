"""Typed configuration, loaded from the TOML files in ``configs/``.

Each section is a dataclass whose defaults live next to the fields. Loading rejects unknown
keys, wrong types and out-of-range values with the key's path (``train.lr``), so a typo is
never silently ignored.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .schema import Checked

SPLITS = ("train", "validation", "test")
# what prepare.task may say: "auto" is "multi" when a record's label is a list or label_sep is set
TASK_CHOICES = ("auto", "single", "multi")  # what prepare writes: train to learn, validation to choose, test to report
WEIGHTINGS = ("mean", "tfidf", "tfidf-l2", "tfidf-sum")
THRESHOLDS = ("global", "per_label")


@dataclass
class PrepareConfig:
    # header layout: the columns joined (with a space) into the text, and the label column
    text_fields: list[str] = field(default_factory=lambda: ["text"])
    label_field: str = "label"
    # "single": one label per text; "multi": a set of labels per text (possibly empty)
    task: str = "auto"
    # splits a label field into several labels (CSV "Sports|Business"); implies task "multi"
    label_sep: str | None = None
    # carved from train when the source has no validation split (stratified, seeded)
    validation_fraction: float = 0.05
    # carved from train only when the source has no test split at all
    test_fraction: float = 0.2
    seed: int = 0
    # repair AG News' mangled HTML entities ("#39;" -> "'") and backslash line breaks
    clean_text: bool = True
    min_freq: int = 1
    max_tokens: int | None = None
    # drop validation and test documents that also occur in train (the same tokens); either
    # way prepare counts and reports them
    drop_overlap: bool = False

    def check(self) -> None:
        _require(0 < self.validation_fraction < 1, "validation_fraction", "must be in (0, 1)")
        _require(0 < self.test_fraction < 1, "test_fraction", "must be in (0, 1)")
        _require(
            self.validation_fraction + self.test_fraction < 1,
            "test_fraction",
            "validation_fraction + test_fraction must stay below 1",
        )
        _require(self.min_freq >= 1, "min_freq", "must be at least 1")
        _require(0 <= self.seed <= MAX_SEED, "seed", f"must be between 0 and {MAX_SEED}")
        _require(self.max_tokens is None or self.max_tokens >= 2, "max_tokens", "must be at least 2")
        _require(len(self.text_fields) >= 1, "text_fields", "needs at least one column")
        _require(self.task in TASK_CHOICES, "task", f"must be one of {', '.join(TASK_CHOICES)}")
        _require(self.label_sep is None or self.label_sep.strip() != "", "label_sep", "must hold a visible character")
        _require(not (self.task == "single" and self.label_sep), "label_sep", 'splits labels: task "single" has one')


MAX_BUCKETS = 100_000_000
MAX_SEED = 2**32 - 1  # what every generator seeded from it (numpy, torch) takes
MAX_EMBED_DIM = 4096


@dataclass
class ModelConfig:
    # embedding size, or "auto": 64, halved while the table would pass 128 MiB (down to 16):
    # on the train-only checks small corpora need 64, and 1M documents lose nothing at 16
    embed_dim: int | str = "auto"
    # 1 = words only; 2 adds hashed bigrams, 3 trigrams too
    ngrams: int = 2
    # hash buckets shared by all n-grams; only buckets seen in training are saved. 500k: level
    # with 2M on validation from 6k to 1M documents, and a quarter of the rows at 1M
    buckets: int = 500_000
    # how a document's feature vectors are summed: "mean" (1/length each); "tfidf" (IDF-weighted
    # mean, train-split IDF); "tfidf-l2" (IDF weights scaled to unit length: long documents
    # still train); "tfidf-sum" (IDF weights, one scale for every document: a text that joins
    # several stories keeps each one's evidence); "auto": tfidf-l2, or for several labels per
    # text tfidf-sum
    weighting: str = "auto"
    # supervised term weighting (tfidf weightings): each feature's IDF times
    # 1 + supervised_weight * (1 - its class entropy / log C), from train documents; 0 = off
    supervised_weight: float = 4.0
    # (tfidf weightings) how much an n-gram weighs against a word of the same weight: below 1,
    # words lead and the many rare n-grams add detail rather than memorize the train split
    ngram_weight: float = 0.5
    # several labels per text: one threshold for every label, chosen on validation ("global"),
    # or one per label where validation has 20 documents of it ("per_label")
    thresholds: str = "global"
    # pretrained word vectors (GloVe or word2vec/fastText text, gzipped or not, or word2vec
    # binary): words of the train vocabulary start from theirs, in columns of their own before
    # embed_dim learned ones (which start at zero: on tweets, the vectors' columns alone lost)
    vectors: str | None = None
    # (vectors) which words that never occur in training keep their vectors, so that a text
    # using them is still understood: "train" (none), "all", or those among the file's first N.
    # 100,000 of GloVe's (frequency-ordered) words matched "all" on AG News subsets of 300 to
    # 3,000 documents, in a model 2.5x smaller
    vectors_vocab: str | int = 100_000

    def check(self) -> None:
        _require(
            self.embed_dim == "auto" or (isinstance(self.embed_dim, int) and 1 <= self.embed_dim <= MAX_EMBED_DIM),
            "embed_dim",
            f'must be between 1 and {MAX_EMBED_DIM}, or "auto"',
        )
        _require(1 <= self.ngrams <= 5, "ngrams", "must be between 1 and 5")
        # the model file keeps bucket ids as int32, and a lookup may map every bucket (4 bytes each)
        _require(1 <= self.buckets <= MAX_BUCKETS, "buckets", f"must be between 1 and {MAX_BUCKETS:_}")
        _require(
            self.weighting in ("auto", *WEIGHTINGS), "weighting", f"must be auto or one of {', '.join(WEIGHTINGS)}"
        )
        _require(self.supervised_weight >= 0, "supervised_weight", "must be >= 0")
        _require(self.ngram_weight > 0, "ngram_weight", "must be > 0")
        _require(self.thresholds in THRESHOLDS, "thresholds", f"must be one of {', '.join(THRESHOLDS)}")
        _require(self.vectors is None or self.vectors.strip() != "", "vectors", "must name a file")
        _require(
            self.vectors_vocab in ("train", "all") or (isinstance(self.vectors_vocab, int) and self.vectors_vocab >= 1),
            "vectors_vocab",
            'must be "train", "all" or a number of words (at least 1)',
        )


@dataclass
class TrainConfig:
    epochs: int = 10
    # the step size; with batch_size = "auto" it is the rate at batch 64, scaled with the batch
    # (halved for several labels per text: their summed per-label losses are steeper)
    lr: float = 2.0
    # documents per step, or "auto": 64 below 16k training documents, 128 below 32k, 256
    # below 64k, 512 above; lr then grows in proportion up to 256 (lr * min(batch, 256) / 64)
    batch_size: int | str = "auto"
    # StepLR: multiply lr by gamma every step_size epochs
    step_size: int = 1
    gamma: float = 0.9
    # gradient-norm clipping threshold
    clip_norm: float = 1.0
    # several labels per text: how many times a label's presence weighs its absence in the
    # loss (BCE's pos_weight; 1: alike). More: a text that joins several stories is not talked
    # out of one label by the others' words (micro-F1 +0.03 and +0.015 on the benchmark corpora)
    pos_weight: float = 8.0
    # stop after this many epochs without a lower validation loss (0 = never), where validation
    # holds 300 documents or more (fewer cannot tell epochs apart: all run): the saved epoch is
    # the best one either way, and on the train-only checks it never came later
    patience: int = 2
    seed: int = 0
    device: str = "auto"

    def check(self) -> None:
        _require(self.epochs >= 1, "epochs", "must be at least 1")
        _require(self.lr > 0, "lr", "must be > 0")
        _require(
            self.batch_size == "auto" or (isinstance(self.batch_size, int) and self.batch_size >= 1),
            "batch_size",
            'must be at least 1, or "auto"',
        )
        _require(self.step_size >= 1, "step_size", "must be at least 1")
        _require(0 < self.gamma <= 1, "gamma", "must be in (0, 1]")
        _require(self.clip_norm > 0, "clip_norm", "must be > 0")
        _require(0 < self.pos_weight <= 1000, "pos_weight", "must be in (0, 1000]")
        _require(self.patience >= 0, "patience", "must be >= 0")
        _require(0 <= self.seed <= MAX_SEED, "seed", f"must be between 0 and {MAX_SEED}")
        _require(self.device in ("auto", "cpu", "cuda", "mps"), "device", 'must be one of "auto", "cpu", "cuda", "mps"')


@dataclass
class Config:
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _KeyError(Exception):
    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise _KeyError(key, message)


def _check_type(value: Any, annotation: Any, key: str) -> Any:
    """Return ``value`` if it fits ``annotation`` (int is accepted for float; no inf or nan)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        for option in options:
            try:
                return _check_type(value, option, key)
            except _KeyError:
                pass
        raise _KeyError(key, f"expected {_type_name(annotation)}, got {type(value).__name__}")
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if not isinstance(value, list):
            raise _KeyError(key, f'expected a list, e.g. ["title", "body"]; got {type(value).__name__} {value!r}')
        return [_check_type(v, item_type, key) for v in value]
    if annotation is type(None):
        if value is None:
            return None
    elif annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # TOML reads inf and nan as floats; range checks like `lr > 0` let inf through
            if not math.isfinite(value):
                raise _KeyError(key, f"must be a finite number, got {value!r}")
            return float(value)
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, annotation):
        return value
    raise _KeyError(key, f"expected {_type_name(annotation)}, got {type(value).__name__} {value!r}")


def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation) if a is not type(None))
    return getattr(annotation, "__name__", str(annotation))


def _build_section(cls: type, values: dict[str, Any], section: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"config: unknown key {section}.{key} (known: {', '.join(sorted(known))})")
        try:
            kwargs[key] = _check_type(value, hints[key], key)
        except _KeyError as exc:
            raise ConfigError(f"config: {section}.{key}: {exc}") from None
    obj = cls(**kwargs)
    try:
        obj.check()
    except _KeyError as exc:
        raise ConfigError(f"config: {section}.{exc.key} {exc}") from None
    return obj


def config_from_dict(data: dict[str, Any]) -> Config:
    sections = {f.name: f for f in dataclasses.fields(Config)}
    built = {}
    for name, values in data.items():
        if name not in sections:
            raise ConfigError(f"config: unknown section [{name}] (known: {', '.join(sections)})")
        if not isinstance(values, dict):
            raise ConfigError(f"config: [{name}] must be a table")
        section_cls = typing.get_type_hints(Config)[name]
        built[name] = _build_section(section_cls, values, name)
    return Config(**built)


def to_toml(cfg: Config) -> str:
    """``cfg`` as a TOML file ``load_config`` reads back to the same config; a key left unset
    (None: TOML has no null) is written as a comment."""
    import json

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v, ensure_ascii=False) if isinstance(v, str) else repr(v)

    lines = []
    for name, section in cfg.to_dict().items():
        lines.append(f"[{name}]")
        lines += [f"# {key} (not set)" if v is None else f"{key} = {value(v)}" for key, v in section.items()]
        lines.append("")
    return "\n".join(lines)


def section_schema(name: str) -> Checked:
    """A config section as ``model.json`` or ``manifest.json`` records it, checked as in a config file."""
    return Checked(lambda values: config_from_dict({name: values}))


def parse_override(text: str) -> tuple[str, str, Any]:
    """Parse ``section.key=value``; the value is read as TOML (bare words as strings)."""
    path, sep, raw = text.partition("=")
    section, dot, key = path.strip().partition(".")
    if not sep or not dot or not key:
        raise ConfigError(f"--set expects section.key=value, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return section, key, value


def load_config(path: Path | None, overrides: dict[tuple[str, str], Any] | None = None) -> Config:
    """Read a TOML config (defaults when ``path`` is None) and apply ``overrides``."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except IsADirectoryError:
            raise ConfigError(f"config path is a directory: {path}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    for (section, key), value in (overrides or {}).items():
        data.setdefault(section, {})
        if not isinstance(data[section], dict):
            raise ConfigError(f"config: [{section}] must be a table")
        data[section][key] = value
    return config_from_dict(data)
