"""Input formats: CSV, JSON lines (or a JSON array), Parquet, plain lines.

Each format is one reader function and one entry of ``FORMATS``; everything else (which
suffix picks which reader, ``predict --input-format``'s choices and help, which files a
directory may hold) is generated from the table. A reader yields ``(text, label)`` pairs,
one row at a time, with the label as a string (empty where the input has none), and raises
``InputError`` naming the file and line for bad input. Every reader bounds what it holds: no
line, CSV field or record longer than ``MAX_LINE_CHARS``, JSON nesting limited by Python's
recursion limit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..util.config import PrepareConfig
from ..util.errors import InputError
from .csvfile import CsvLayout, csv_record_chunks, csv_rows
from .textio import STDIN, empty_error, open_input, utf8_error


def label_text(value: object, path: Path, where: str) -> str:
    if isinstance(value, bool) or value is None or not isinstance(value, (str, int, float)):
        raise InputError(f"{path}: {where}: label must be a string or an integer, got {value!r}")
    if isinstance(value, float):
        if not value.is_integer():
            raise InputError(f"{path}: {where}: label must be a string or an integer, got {value!r}")
        value = int(value)
    return str(value)


Label = str | tuple[str, ...]  # one label, or a text's set of labels (a list in the file)


def label_of(value: object, path: Path, where: str) -> Label:
    """A field's label: a string or integer, or a list of them (several labels, possibly none)."""
    if isinstance(value, (list, tuple)):
        return label_list(value, path, where)
    return label_text(value, path, where)


def label_list(values: Iterable[object], path: Path, where: str) -> tuple[str, ...]:
    """A list of labels as the strings they are, each once, in first-seen order; none empty."""
    labels = []
    for value in values:
        if isinstance(value, (list, tuple)):
            raise InputError(f"{path}: {where}: a label list holds a list ({value!r}); give each label once")
        label = label_text(value, path, where).strip()
        if not label:
            raise InputError(f"{path}: {where}: empty label in a label list (an empty list means none applies)")
        labels.append(label)
    return tuple(dict.fromkeys(labels))


def split_label(label: Label, sep: str | None) -> Label:
    """A label field as a text's set of labels where ``sep`` divides it ("Sports|Business"; an
    empty field is none). Raises ValueError for an empty label between separators, and for a
    label of a list that holds the separator (which would not read back as one label)."""
    if sep is None:
        return label
    if isinstance(label, tuple):
        if held := next((one for one in label if sep in one), None):
            raise ValueError(f"label {held!r} holds the label separator {sep!r}")
        return label
    if not label.strip():
        return ()
    parts = [part.strip() for part in label.split(sep)]
    if "" in parts:
        raise ValueError(f"empty label in {label!r} (separator {sep!r})")
    return tuple(dict.fromkeys(parts))


def label_set(label: Label, sep: str | None) -> tuple[str, ...]:
    """``split_label`` always as a set of labels: a label field ``sep`` does not divide is a set
    of one (none where it is empty)."""
    labels = split_label(label, sep)
    if isinstance(labels, str):
        return (labels.strip(),) if labels.strip() else ()
    return labels


def _record(obj: object, cfg: PrepareConfig, path: Path, where: str, labeled: bool = True) -> tuple[str, str]:
    if not labeled and isinstance(obj, str):
        return obj, ""  # a text to predict may be a bare JSON string
    if not isinstance(obj, dict):
        raise InputError(f"{path}: {where}: expected a JSON object" + ("" if labeled else " or string"))
    wanted = (cfg.label_field, *cfg.text_fields) if labeled else cfg.text_fields
    missing = [k for k in wanted if k not in obj]
    if missing:
        raise InputError(
            f"{path}: {where}: missing field(s) {missing} (name the columns with --text-field / --label-field); "
            f"found {sorted(obj)[:6]}"
        )
    parts = []
    for key in cfg.text_fields:
        if not isinstance(obj[key], str):
            raise InputError(f"{path}: {where}: field {key!r} must be a string")
        parts.append(_valid_unicode(obj[key], path, where, "text"))
    label = label_of(obj[cfg.label_field], path, where) if labeled else ""
    for part in (label,) if isinstance(label, str) else label:
        _valid_unicode(part, path, where, "label")
    return " ".join(parts), label


def _valid_unicode(text: str, path: Path, where: str, what: str) -> str:
    """JSON's "\\ud800" escapes make strings no UTF-8 can hold: refused like undecodable bytes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"{path}: {where}: {what} holds {text[exc.start]!a}, a lone surrogate (not valid Unicode)"
        ) from None
    return text


def _json_rows(
    fh, path: Path, cfg: PrepareConfig, class_names: list[str] | None = None, labeled: bool = True, strict: bool = True
) -> Iterator[tuple[str, Label]]:
    """(text, label) of JSON lines, or of a JSON array when the first non-blank line opens one.

    Read forward only (no seek), so standard input works too.
    """
    line_no, array = 0, False  # lines read so far
    try:
        line = ""
        while not line.strip():
            line = fh.readline()
            if not line:
                raise empty_error(path)
            line_no += 1
        if line.lstrip().startswith("["):
            # a JSON array of objects (.json files): parsed whole, as json can only do
            array = True
            data = json.loads(line + fh.read())
            for i, obj in enumerate(data, 1):
                yield _record(obj, cfg, path, f"item {i}", labeled)
            return
        yield _record(json.loads(line), cfg, path, f"line {line_no}", labeled)
        for n, line in enumerate(fh, line_no + 1):
            line_no = n
            if line.strip():
                yield _record(json.loads(line), cfg, path, f"line {n}", labeled)
    except UnicodeDecodeError as exc:
        raise utf8_error(path, exc, line_no) from None
    except RecursionError:
        raise InputError(f"{path}: line {line_no}: JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        # an array is parsed from its first line on
        raise InputError(
            f"{path}: line {line_no + exc.lineno - 1 if array else line_no}: invalid JSON ({exc.msg})"
        ) from None


def _parquet_rows(
    path: Path,
    _: Path,
    cfg: PrepareConfig,
    class_names: list[str] | None = None,
    labeled: bool = True,
    strict: bool = True,
) -> Iterator[tuple[str, str]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a foreign file
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    columns = pf.schema_arrow.names
    wanted = [cfg.label_field, *cfg.text_fields] if labeled else list(cfg.text_fields)
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {missing} (name the columns with --text-field / --label-field); found {columns[:6]}"
        )
    row = 0
    for batch in pf.iter_batches(columns=wanted, batch_size=65536):
        data = batch.to_pydict()
        for i in range(batch.num_rows):
            row += 1
            parts = [data[c][i] or "" for c in cfg.text_fields]
            label = label_of(data[cfg.label_field][i], path, f"row {row}") if labeled else ""
            yield " ".join(parts), label


def _line_rows(
    fh: Iterable[str],
    path: Path,
    cfg: PrepareConfig,
    class_names: list[str] | None = None,
    labeled: bool = False,
    strict: bool = False,
) -> Iterator[tuple[str, str]]:
    """One text per line, blank lines included (each gets a record, so output lines up with input)."""
    lines = 0
    try:
        for line in fh:
            lines += 1
            yield line.rstrip("\r\n"), ""
    except UnicodeDecodeError as exc:
        raise utf8_error(path, exc, lines) from None
    if lines == 0:
        raise empty_error(path)


# --- the table ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Format:
    """One input format. ``rows(source, path, cfg, class_names, labeled, strict)`` reads
    (text, label) pairs from an open text stream (from the file's path where not ``streams``,
    so never from standard input)."""

    rows: Callable[..., Iterator[tuple[str, str]]]
    help: str
    suffixes: tuple[str, ...] = ()  # the files it is picked for
    labeled: bool = True  # can hold training data (a label column)
    streams: bool = True
    # split a file into chunks of raw records, parsed in worker processes (evaluate)
    chunks: Callable[..., tuple[CsvLayout, Iterator[tuple[int, list[str]]]]] | None = None


FORMATS = {
    "lines": Format(_line_rows, "one text per line", labeled=False),
    "csv": Format(csv_rows, "CSV with a header, or the AG News layout", (".csv",), chunks=csv_record_chunks),
    "jsonl": Format(_json_rows, "JSON lines or a JSON array", (".jsonl", ".json")),
    "parquet": Format(_parquet_rows, "Parquet", (".parquet",), streams=False),
}
LABELED_SUFFIXES = tuple(suffix for f in FORMATS.values() if f.labeled for suffix in f.suffixes)


def format_of(path: Path | str) -> str | None:
    """The format a file's suffix picks, if any."""
    suffix = Path(path).suffix.lower()
    return next((name for name, f in FORMATS.items() if suffix in f.suffixes), None)


def read_rows(
    path: str | Path,
    fmt: str,
    cfg: PrepareConfig,
    class_names: list[str] | None = None,
    *,
    labeled: bool = True,
    strict: bool = True,
) -> Iterator[tuple[str, str]]:
    """Rows of a file (or standard input, ``path`` "-") in format ``fmt``."""
    name = STDIN if path == "-" else Path(path)
    reader = FORMATS[fmt]
    if not reader.streams:
        if path == "-":
            raise InputError(f"{reader.help} cannot be read from standard input: give the file's path")
        yield from reader.rows(name, name, cfg, class_names, labeled=labeled, strict=strict)
        return
    with open_input(str(path)) as fh:
        yield from reader.rows(fh, name, cfg, class_names, labeled=labeled, strict=strict)
