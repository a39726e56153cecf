"""Reading labeled corpora: Hub datasets, CSV / JSONL / Parquet files, AG News directories.

Every reader yields ``(text, label)`` pairs with the label as a string, one row at a time,
so a corpus never has to fit in memory as text. Problems with the input raise
``InputError`` naming the file and row.
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from urllib.parse import urlparse

from .config import PrepareConfig
from .errors import EnvironmentFailure, InputError

SPLIT_NAMES = {
    "train": ("train",),
    "validation": ("validation", "valid", "val", "dev"),
    "test": ("test",),
}
FILE_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet")
DEFAULT_HUB_DATASET = "fancyzhx/ag_news"

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass
class Source:
    """A corpus as split name -> row reader, plus the label names it declares (if any)."""

    description: str
    splits: dict[str, object]  # split name -> callable returning an iterator of rows
    label_names: list[str] | None = None
    files: dict[str, str] = field(default_factory=dict)

    def rows(self, split: str) -> Iterator[tuple[str, str]]:
        return self.splits[split]()  # type: ignore[operator]


def looks_like_path(source: str) -> bool:
    """Hub names are ``name`` or ``owner/name``; anything else that could be a path is one."""
    return (
        os.path.exists(source)
        or source.startswith((".", "/", "~"))
        or source.lower().endswith(FILE_SUFFIXES)
        or source.count("/") > 1
    )


def open_source(source: str, cfg: PrepareConfig) -> Source:
    """A local file or directory when ``source`` names one, else a Hub dataset name."""
    if looks_like_path(source):
        path = Path(source).expanduser()
        if not path.exists():
            raise InputError(f"no such file or directory: {source}")
        return open_directory(path, cfg) if path.is_dir() else open_file(path, cfg)
    return open_hub(source, cfg)


def open_file(path: Path, cfg: PrepareConfig) -> Source:
    _check_suffix(path)
    names = _read_classes(path.parent / "classes.txt")
    return Source(str(path), {"train": lambda: read_file(path, cfg, names)}, names, {"train": str(path)})


def open_directory(path: Path, cfg: PrepareConfig) -> Source:
    found: dict[str, Path] = {}
    for split, stems in SPLIT_NAMES.items():
        for stem in stems:
            matches = [path / f"{stem}{suffix}" for suffix in FILE_SUFFIXES if (path / f"{stem}{suffix}").is_file()]
            if len(matches) > 1:
                raise InputError(f"{path}: several files for split {split!r}: {', '.join(m.name for m in matches)}")
            if matches:
                found[split] = matches[0]
                break
    if "train" not in found:
        raise InputError(f"{path}: no train file (expected train.csv, train.jsonl, train.json or train.parquet)")
    names = _read_classes(path / "classes.txt")
    readers = {split: (lambda p=p: read_file(p, cfg, names)) for split, p in found.items()}
    return Source(str(path), readers, names, {s: str(p) for s, p in found.items()})


def _check_suffix(path: Path) -> None:
    if path.suffix.lower() not in FILE_SUFFIXES:
        raise InputError(f"{path}: unsupported file type {path.suffix!r} (use .csv, .jsonl, .json or .parquet)")


def _read_classes(path: Path) -> list[str] | None:
    if not path.is_file():
        return None
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    if len(set(names)) != len(names):
        raise InputError(f"{path}: duplicate class names")
    return names or None


def read_file(path: Path, cfg: PrepareConfig, class_names: list[str] | None = None) -> Iterator[tuple[str, str]]:
    """Rows of one labeled file, by its suffix."""
    _check_suffix(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path, cfg, class_names)
    if suffix == ".parquet":
        return _read_parquet(path, cfg)
    return _read_json_lines(path, cfg)


def _utf8_error(path: Path, exc: UnicodeDecodeError, line: int | None = None) -> InputError:
    where = f" (line {line})" if line else ""
    return InputError(f"{path}: not valid UTF-8{where}: byte 0x{exc.object[exc.start]:02x} cannot be decoded")


class CsvLayout:
    """How to turn a CSV row into (text, label): a header naming the columns, or AG News'.

    ``strict``: a class index outside ``classes.txt`` is an error (a corpus to train on);
    otherwise it becomes a label of its own, the index as written (a batch to evaluate,
    whose unknown labels are counted, not fatal).
    """

    def __init__(
        self, first_row: list[str], cfg: PrepareConfig, class_names: list[str] | None, path: Path, strict: bool = True
    ):
        self.path, self.class_names, self.strict = path, class_names, strict
        wanted = [cfg.label_field, *cfg.text_fields]
        if all(col in first_row for col in wanted):
            self.header = first_row
            self.label_at = first_row.index(cfg.label_field)
            self.text_at = [first_row.index(col) for col in cfg.text_fields]
        elif len(first_row) >= 2 and first_row[0].strip().isdigit():
            self.header = None  # the original AG News layout: class index (1-based), title, description
            self._names: dict[str, str] = {}  # raw class index -> label name, checked once per value
        else:
            raise InputError(
                f"{path}: missing columns {[c for c in wanted if c not in first_row]}: expected a header "
                f"with {wanted} (set prepare.label_field / prepare.text_fields) or the AG News layout "
                f"(class index, title, description); found {first_row[:6]}"
            )

    def rows(self, reader: Iterable[list[str]], line_of: Callable[[], int]) -> Iterator[tuple[str, str]]:
        """(text, label) of every non-empty data row; ``line_of()`` gives the current line for errors."""
        if self.header is not None:
            width, label_at, text_at = len(self.header), self.label_at, self.text_at
            for row in reader:
                if len(row) != width:
                    if not row:
                        continue
                    raise InputError(f"{self.path}: line {line_of()} has {len(row)} fields, the header {width}")
                yield " ".join(row[i] for i in text_at), row[label_at]
            return
        names = self._names
        for row in reader:
            if len(row) < 2:
                if not row:
                    continue
                raise InputError(f"{self.path}: line {line_of()} is not 'class index, text...'")
            label = names.get(row[0])
            if label is None:
                if not row[0].strip().isdigit():
                    raise InputError(f"{self.path}: line {line_of()} is not 'class index, text...'")
                label = names[row[0]] = self._ag_label(row[0], line_of())
            yield " ".join(row[1:]), label

    def _ag_label(self, raw: str, line: int) -> str:
        index, names = int(raw), self.class_names
        if names is not None and 1 <= index <= len(names):
            return names[index - 1]
        if names is not None and self.strict:
            raise InputError(f"{self.path}: line {line}: class index {index} outside classes.txt (1-{len(names)})")
        return str(index)

    def parse_lines(self, first_line: int, lines: list[str]) -> list[tuple[str, str]]:
        """Rows of a chunk of complete CSV records (see ``csv_record_chunks``)."""
        reader = csv.reader(lines)
        try:
            return list(self.rows(reader, lambda: first_line + reader.line_num - 1))
        except csv.Error as exc:
            raise InputError(f"{self.path}: line {first_line + reader.line_num - 1}: malformed CSV ({exc})") from None


def _open_text(path: Path):
    try:
        return open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def _read_csv(path: Path, cfg: PrepareConfig, class_names: list[str] | None) -> Iterator[tuple[str, str]]:
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        try:
            first = next(reader, None)
            if first is None:
                raise InputError(f"{path}: empty file")
            layout = CsvLayout(first, cfg, class_names, path)
            rows = reader if layout.header is not None else chain((first,), reader)
            yield from layout.rows(rows, lambda: reader.line_num)
        except UnicodeDecodeError as exc:
            raise _utf8_error(path, exc, reader.line_num + 1) from None
        except csv.Error as exc:
            raise InputError(f"{path}: line {reader.line_num}: malformed CSV ({exc})") from None


def csv_record_chunks(
    path: Path, cfg: PrepareConfig, class_names: list[str] | None, records: int, *, strict: bool = True
) -> tuple[CsvLayout, Iterator[tuple[int, list[str]]]]:
    """The file's layout (``strict`` as in ``CsvLayout``), and its data as chunks of raw lines
    holding ``records`` whole records.

    Splitting needs no parsing: a record ends at a line end outside quotes, i.e. where the
    count of '"' so far is even (an escaped quote is two). The chunks can then be parsed
    (``CsvLayout.parse_lines``) in parallel.
    """
    fh = _open_text(path)
    try:
        first_lines = [fh.readline()]
        while first_lines[-1] and sum(line.count('"') for line in first_lines) % 2:
            first_lines.append(fh.readline())
        first = next(csv.reader(first_lines), None)
    except UnicodeDecodeError as exc:
        fh.close()
        raise _utf8_error(path, exc, 1) from None
    except csv.Error as exc:
        fh.close()
        raise InputError(f"{path}: line 1: malformed CSV ({exc})") from None
    if not first:
        fh.close()
        raise InputError(f"{path}: empty file")
    layout = CsvLayout(first, cfg, class_names, path, strict)

    def chunks() -> Iterator[tuple[int, list[str]]]:
        with fh:
            line_no = len(first_lines) + 1
            chunk: list[str] = [] if layout.header is not None else list(first_lines)
            start = line_no if layout.header is not None else 1
            count = quotes = 0
            try:
                for line in fh:
                    chunk.append(line)
                    quotes += line.count('"')
                    if quotes % 2 == 0:
                        count += 1
                        if count >= records:
                            yield start, chunk
                            start, chunk, count = line_no + 1, [], 0
                    line_no += 1
            except UnicodeDecodeError as exc:
                raise _utf8_error(path, exc, line_no) from None
            if chunk:
                yield start, chunk

    return layout, chunks()


def _label_text(value: object, path: Path, where: str) -> str:
    if isinstance(value, bool) or value is None or not isinstance(value, (str, int, float)):
        raise InputError(f"{path}: {where}: label must be a string or an integer, got {value!r}")
    if isinstance(value, float):
        if not value.is_integer():
            raise InputError(f"{path}: {where}: label must be a string or an integer, got {value!r}")
        value = int(value)
    return str(value)


def _record(obj: object, cfg: PrepareConfig, path: Path, where: str) -> tuple[str, str]:
    if not isinstance(obj, dict):
        raise InputError(f"{path}: {where}: expected a JSON object")
    missing = [k for k in (cfg.label_field, *cfg.text_fields) if k not in obj]
    if missing:
        raise InputError(
            f"{path}: {where}: missing field(s) {missing} (set prepare.label_field / prepare.text_fields); "
            f"found {sorted(obj)[:6]}"
        )
    parts = []
    for key in cfg.text_fields:
        if not isinstance(obj[key], str):
            raise InputError(f"{path}: {where}: field {key!r} must be a string")
        parts.append(obj[key])
    return " ".join(parts), _label_text(obj[cfg.label_field], path, where)


def _read_json_lines(path: Path, cfg: PrepareConfig) -> Iterator[tuple[str, str]]:
    try:
        fh = open(path, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        line_no = 0
        try:
            first = fh.read(1)
            while first and first.isspace():
                first = fh.read(1)
            if not first:
                raise InputError(f"{path}: empty file")
            if first == "[":
                # a JSON array of objects (.json files)
                data = json.loads(first + fh.read())
                for i, obj in enumerate(data, 1):
                    yield _record(obj, cfg, path, f"item {i}")
                return
            fh.seek(0)
            for line_no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                yield _record(json.loads(line), cfg, path, f"line {line_no}")
        except UnicodeDecodeError as exc:
            raise _utf8_error(path, exc) from None
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: line {line_no or exc.lineno}: invalid JSON ({exc.msg})") from None


def _read_parquet(path: Path, cfg: PrepareConfig) -> Iterator[tuple[str, str]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a foreign file
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    columns = pf.schema_arrow.names
    wanted = [cfg.label_field, *cfg.text_fields]
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {missing} (set prepare.label_field / prepare.text_fields); found {columns[:6]}"
        )
    row = 0
    for batch in pf.iter_batches(columns=wanted, batch_size=65536):
        data = batch.to_pydict()
        for i in range(batch.num_rows):
            row += 1
            parts = [data[c][i] or "" for c in cfg.text_fields]
            yield " ".join(parts), _label_text(data[cfg.label_field][i], path, f"row {row}")


# --- the Hugging Face Hub -------------------------------------------------------------


def _hub_reachable(timeout: float = 3.0) -> bool:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (80 if parsed.scheme == "http" else 443)
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True  # behind a proxy the direct probe says nothing; let datasets try
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def open_hub(name: str, cfg: PrepareConfig) -> Source:
    """A dataset from the Hugging Face Hub (or its local cache when offline)."""
    online = _hub_reachable()
    if not online:
        # only the local cache can help; tell huggingface_hub so before it is imported,
        # else it retries for half a minute
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["HF_DATASETS_OFFLINE"] = "1"
    try:
        import datasets

        datasets.logging.set_verbosity_error()
        datasets.disable_progress_bars()
        dd = datasets.load_dataset(name)
    except Exception as exc:
        if not online:
            raise EnvironmentFailure(
                f"cannot reach the Hugging Face Hub to download {name!r} (offline, not cached); "
                "use --from PATH with local CSV/JSONL/Parquet files or an AG News directory"
            ) from None
        raise InputError(
            f"cannot load Hub dataset {name!r}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None
    splits = {}
    for split, aliases in SPLIT_NAMES.items():
        for alias in aliases:
            if alias in dd:
                splits[split] = dd[alias]
                break
    if "train" not in splits:
        raise InputError(f"Hub dataset {name!r} has no train split (has {list(dd)})")
    features = splits["train"].features
    missing = [c for c in (cfg.label_field, *cfg.text_fields) if c not in features]
    if missing:
        raise InputError(
            f"Hub dataset {name!r}: missing column(s) {missing} (set prepare.label_field / prepare.text_fields); "
            f"found {list(features)}"
        )
    label_feature = features[cfg.label_field]
    names = list(label_feature.names) if hasattr(label_feature, "names") else None

    def reader(ds):
        for item in ds:
            label = item[cfg.label_field]
            label = names[label] if names is not None else _label_text(label, Path(name), "row")
            yield " ".join(item[c] or "" for c in cfg.text_fields), label

    return Source(f"hf://{name}", {s: (lambda d=d: reader(d)) for s, d in splits.items()}, names)


# --- unlabeled texts for predict --------------------------------------------------------


def read_texts(path: str, input_format: str, cfg: PrepareConfig) -> Iterator[str]:
    """Texts to label, one at a time: plain lines, CSV (header or AG layout) or JSONL.

    ``path`` "-" is standard input. ``input_format`` "auto" picks by suffix (plain lines for
    stdin and unknown suffixes).
    """
    if input_format == "auto":
        suffix = Path(path).suffix.lower() if path != "-" else ""
        input_format = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}.get(suffix, "lines")
    if path == "-":
        # strict UTF-8 whatever the locale; detached afterwards so stdin itself stays open
        stream = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", newline="")
        try:
            yield from _texts_of_stream(stream, input_format, cfg, Path("<stdin>"))
        finally:
            stream.detach()
        return
    try:
        stream = open(path, encoding="utf-8", newline="")
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    with stream:
        yield from _texts_of_stream(stream, input_format, cfg, Path(path))


def _texts_of_stream(stream, input_format: str, cfg: PrepareConfig, name: Path) -> Iterator[str]:
    try:
        if input_format == "lines":
            for line in stream:
                yield line.rstrip("\r\n")
        elif input_format == "jsonl":
            for n, line in enumerate(stream, 1):
                if line.strip():
                    yield _text_of(_json_line(line, name, n), cfg, name, n)
        elif input_format == "csv":
            yield from _csv_texts(stream, cfg, name)
        else:
            raise InputError(f"unknown input format {input_format!r} (auto, lines, csv, jsonl)")
    except UnicodeDecodeError as exc:
        raise _utf8_error(name, exc) from None


def _json_line(line: str, path: Path, n: int) -> object:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: line {n}: invalid JSON ({exc.msg})") from None


def _text_of(obj: object, cfg: PrepareConfig, path: Path, n: int) -> str:
    if isinstance(obj, str):
        return obj
    if not isinstance(obj, dict) or any(k not in obj for k in cfg.text_fields):
        raise InputError(f"{path}: line {n}: expected an object with {cfg.text_fields}")
    return " ".join(str(obj[k]) for k in cfg.text_fields)


def _csv_texts(stream, cfg: PrepareConfig, path: Path) -> Iterator[str]:
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        return
    if all(col in header for col in cfg.text_fields):
        at = [header.index(col) for col in cfg.text_fields]
        for row in reader:
            if row:
                yield " ".join(row[i] if i < len(row) else "" for i in at)
    elif len(header) >= 2 and header[0].strip().isdigit():  # AG News layout: the class index is ignored
        for row in chain((header,), reader):
            if row:
                yield " ".join(row[1:])
    else:
        raise InputError(
            f"{path}: CSV needs a header with {cfg.text_fields} (or the AG News layout); found {header[:6]}"
        )
