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
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from pathlib import Path
from urllib.parse import urlparse

from .config import PrepareConfig
from .errors import EnvironmentFailure, InputError
from .parallel import BATCH_CHARS

SPLIT_NAMES = {
    "train": ("train",),
    "validation": ("validation", "valid", "val", "dev"),
    "test": ("test",),
}
FILE_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet")
DEFAULT_HUB_DATASET = "fancyzhx/ag_news"
SAMPLE = "data/ag_news_sample"  # shipped with the repository, for an offline first run
STDIN = Path("<stdin>")  # the name errors give standard input
# "utf-8-sig" decodes UTF-8 and drops a leading byte-order mark (Excel writes one)
ENCODING = "utf-8-sig"

# a longer line (or CSV field, or record) is refused: an endless one (/dev/zero, a file
# without line ends, a quote never closed) would otherwise be read into memory whole
MAX_LINE_CHARS = 1 << 24
csv.field_size_limit(MAX_LINE_CHARS)


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
            matches = [
                path / f"{stem}{suffix}" for suffix in FILE_SUFFIXES if os.path.lexists(path / f"{stem}{suffix}")
            ]
            for match in matches:
                if not match.is_file():  # is_file() follows links: a loop or a dangling link is not one
                    raise InputError(
                        f"{match} is not a regular file (a FIFO, device or directory, or a link that leads nowhere)"
                    )
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
        names = [line.strip() for line in path.read_text(encoding=ENCODING).splitlines() if line.strip()]
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


def _utf8_error(path: Path, exc: UnicodeDecodeError, lines_read: int = 0) -> InputError:
    """Name the line of the first byte that is not UTF-8.

    The decoder works on blocks read ahead, so neither its error nor the reader's line count
    says which line it is: a file is scanned again, line by line (on this error path only);
    standard input cannot be, so its ``lines_read`` (lines the reader took) plus the newlines
    before the bad byte in the failing block give the line.
    """
    found = _first_bad_utf8(path) if path != STDIN and path.is_file() else None
    if found is None:
        found = lines_read + 1 + exc.object[: exc.start].count(b"\n"), exc.object[exc.start]
    line, byte = found
    return InputError(f"{path}: not valid UTF-8 (line {line}): byte 0x{byte:02x} cannot be decoded")


def _first_bad_utf8(path: Path) -> tuple[int, int] | None:
    """(line, byte) of the first undecodable byte; a newline byte is never part of a UTF-8
    sequence, so decoding each line alone finds the same byte as decoding the whole file."""
    try:
        with open(path, "rb") as fh:
            for line_no, line in enumerate(fh, 1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    return line_no, line[exc.start]
    except OSError:
        pass
    return None


def _empty(path: Path) -> InputError:
    return InputError(f"{path}: {'empty input' if path == STDIN else 'empty file'}")


# the csv module's words for a quote opened and never closed, which say nothing of the quote
_OPEN_QUOTE = {
    "unexpected end of data": "a quoted field is never closed",
    "field larger than field limit": "a quote opened here and never closed?",
}


def _malformed(path: Path, line: int, exc: csv.Error) -> InputError:
    hint = _OPEN_QUOTE.get(str(exc).split(" (")[0])
    return InputError(f"{path}: line {line}: malformed CSV ({exc}{': ' + hint if hint else ''})")


def _no_label(row: list[str]) -> str:
    return ""


def _joined(columns: list[int]) -> Callable[[list[str]], str]:
    """A row's text columns joined with a space; a lone column taken as it is (the usual
    case, and several times faster than a join per row)."""
    pick = itemgetter(*columns)
    if len(columns) == 1:
        return pick

    def join(row: list[str]) -> str:
        return " ".join(pick(row))

    return join


class CsvLayout:
    """How to turn a CSV row into (text, label): a header naming the columns, or AG News'.

    ``strict``: a class index outside ``classes.txt`` is an error (a corpus to train on);
    otherwise it becomes a label of its own, the index as written (a batch to evaluate,
    whose unknown labels are counted, not fatal). ``labeled`` False (texts to predict): the
    header needs only the text columns, and rows without a label column get "".
    """

    def __init__(
        self,
        first_row: list[str],
        cfg: PrepareConfig,
        class_names: list[str] | None,
        path: Path,
        strict: bool = True,
        labeled: bool = True,
    ):
        self.path, self.class_names, self.strict = path, class_names, strict
        wanted = [cfg.label_field, *cfg.text_fields] if labeled else list(cfg.text_fields)
        if all(col in first_row for col in wanted):
            self.header = first_row
            self.label_at = first_row.index(cfg.label_field) if cfg.label_field in first_row else None
            self.text_at = [first_row.index(col) for col in cfg.text_fields]
        elif len(first_row) >= 2 and first_row[0].strip().isdigit():
            self.header = None  # the original AG News layout: class index (1-based), title, description
            self._names: dict[str, str] = {}  # raw class index -> label name, checked once per value
        else:
            raise InputError(
                f"{path}: missing columns {[c for c in wanted if c not in first_row]}: expected a header "
                f"with {wanted} (name the columns with --text-field / --label-field) or the AG News layout "
                f"(class index, title, description); found {first_row[:6]}"
            )

    def rows(self, reader: Iterable[list[str]], line_of: Callable[[], int]) -> Iterator[tuple[str, str]]:
        """(text, label) of every non-empty data row; ``line_of()`` gives the current line for errors."""
        if self.header is not None:
            width = len(self.header)
            text_of = _joined(self.text_at)
            label_of = _no_label if self.label_at is None else itemgetter(self.label_at)
            for row in reader:
                if len(row) != width:
                    if not row:
                        continue
                    raise InputError(f"{self.path}: line {line_of()} has {len(row)} fields, the header {width}")
                yield text_of(row), label_of(row)
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
        records = _Records(lines, first_line)
        try:
            return list(self.rows(iter(records), records.line))
        except csv.Error as exc:
            raise records.error(self.path, exc) from None


class _Records:
    """A strict CSV reader that remembers where its last whole record ended, so that a quote
    never closed is reported on the line it opened, not where the file (or the limit) ends."""

    def __init__(self, lines: Iterable[str], first_line: int = 1):
        self.reader, self.first_line, self.ended = csv.reader(lines, strict=True), first_line, 0

    def __iter__(self) -> Iterator[list[str]]:
        for row in self.reader:
            yield row
            self.ended = self.reader.line_num

    def line(self) -> int:
        return self.first_line + self.reader.line_num - 1

    def error(self, path: Path, exc: csv.Error) -> InputError:
        line = self.first_line + self.ended if _OPEN_QUOTE.get(str(exc).split(" (")[0]) else self.line()
        return _malformed(path, line, exc)


class BoundedLines:
    """A text file read line by line, no line longer than ``MAX_LINE_CHARS``."""

    def __init__(self, fh, name: object):
        self._fh, self._name, self._lines = fh, name, 0

    def readline(self, size: int = -1) -> str:
        line = self._fh.readline(MAX_LINE_CHARS + 1)
        self._lines += 1
        if len(line) > MAX_LINE_CHARS:
            raise InputError(f"{self._name}: line {self._lines} is longer than {MAX_LINE_CHARS:,} characters")
        return line

    def __iter__(self) -> BoundedLines:
        return self

    def __next__(self) -> str:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def read(self, size: int = -1) -> str:
        return self._fh.read(size)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> BoundedLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()


def _open_text(path: Path) -> BoundedLines:
    # newline="": the csv module finds record ends itself (a quoted field may hold newlines)
    try:
        return BoundedLines(open(path, newline="", encoding=ENCODING), path)
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def _read_csv(path: Path, cfg: PrepareConfig, class_names: list[str] | None) -> Iterator[tuple[str, str]]:
    with _open_text(path) as fh:
        yield from _csv_rows(fh, path, cfg, class_names)


def _csv_rows(
    fh: Iterable[str],
    path: Path,
    cfg: PrepareConfig,
    class_names: list[str] | None,
    strict: bool = True,
    labeled: bool = True,
) -> Iterator[tuple[str, str]]:
    """(text, label) of a CSV stream (``strict``, ``labeled``: see ``CsvLayout``).

    The reader is strict: a quote left open at the end of the file is an error, not one
    record swallowing the rest of the file.
    """
    records = _Records(fh)
    rows = iter(records)
    try:
        first = next(rows, None)
        if first is None:
            raise _empty(path)
        layout = CsvLayout(first, cfg, class_names, path, strict, labeled)
        yield from layout.rows(rows if layout.header is not None else chain((first,), rows), records.line)
    except UnicodeDecodeError as exc:
        raise _utf8_error(path, exc, records.line()) from None
    except csv.Error as exc:
        raise records.error(path, exc) from None


def csv_record_chunks(
    path: Path, cfg: PrepareConfig, class_names: list[str] | None, records: int, *, strict: bool = True
) -> tuple[CsvLayout, Iterator[tuple[int, list[str]]]]:
    """The file's layout (``strict`` as in ``CsvLayout``), and its data as chunks of raw lines
    holding ``records`` whole records (fewer once a chunk holds ``BATCH_CHARS`` characters).

    Splitting needs no parsing: a record ends at a line end outside quotes, i.e. where the
    count of '"' so far is even (an escaped quote is two). The chunks can then be parsed
    (``CsvLayout.parse_lines``) in parallel.
    """
    fh = _open_text(path)

    def record_too_long(line_no: int) -> InputError:  # in the csv module's words, as prepare says it
        return _malformed(path, line_no, csv.Error(f"field larger than field limit ({MAX_LINE_CHARS})"))

    try:
        first_lines = [fh.readline()]
        while first_lines[-1] and sum(line.count('"') for line in first_lines) % 2:
            if sum(map(len, first_lines)) > MAX_LINE_CHARS:
                raise record_too_long(1)
            first_lines.append(fh.readline())
        first = next(csv.reader(first_lines, strict=True), None)
    except UnicodeDecodeError as exc:
        fh.close()
        raise _utf8_error(path, exc) from None
    except csv.Error as exc:
        fh.close()
        raise _malformed(path, 1, exc) from None
    if not first:
        fh.close()
        raise _empty(path)
    layout = CsvLayout(first, cfg, class_names, path, strict)

    def chunks() -> Iterator[tuple[int, list[str]]]:
        with fh:
            line_no = len(first_lines) + 1
            chunk: list[str] = [] if layout.header is not None else list(first_lines)
            start = line_no if layout.header is not None else 1
            count = quotes = pending = held = 0
            record_start = line_no
            try:
                for line in fh:
                    record_start = line_no if pending == 0 else record_start
                    chunk.append(line)
                    quotes += line.count('"')
                    pending += len(line)  # characters of the record this line is in
                    held += len(line)
                    if quotes % 2:
                        if pending > MAX_LINE_CHARS:
                            raise record_too_long(record_start)
                    else:
                        pending = 0
                        count += 1
                        if count >= records or held >= BATCH_CHARS:
                            yield start, chunk
                            start, chunk, count, held = line_no + 1, [], 0, 0
                    line_no += 1
            except UnicodeDecodeError as exc:
                raise _utf8_error(path, exc, line_no - 1) from None
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
    label = _valid_unicode(_label_text(obj[cfg.label_field], path, where), path, where, "label") if labeled else ""
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


def _read_json_lines(path: Path, cfg: PrepareConfig) -> Iterator[tuple[str, str]]:
    with _open_text(path) as fh:
        yield from _json_rows(fh, path, cfg)


def _json_rows(fh, path: Path, cfg: PrepareConfig, labeled: bool = True) -> Iterator[tuple[str, str]]:
    """(text, label) of JSON lines, or of a JSON array when the first non-blank line opens one.

    Read forward only (no seek), so standard input works too.
    """
    line_no, array = 0, False  # lines read so far
    try:
        line = ""
        while not line.strip():
            line = fh.readline()
            if not line:
                raise _empty(path)
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
        raise _utf8_error(path, exc, line_no) from None
    except RecursionError:
        raise InputError(f"{path}: line {line_no}: JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        # an array is parsed from its first line on
        raise InputError(
            f"{path}: line {line_no + exc.lineno - 1 if array else line_no}: invalid JSON ({exc.msg})"
        ) from None


def _read_parquet(path: Path, cfg: PrepareConfig, labeled: bool = True) -> Iterator[tuple[str, str]]:
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
            label = _label_text(data[cfg.label_field][i], path, f"row {row}") if labeled else ""
            yield " ".join(parts), label


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
                "use --from PATH with local CSV/JSONL/Parquet files or an AG News directory "
                f"(a clone of classify has a 3,000-row sample: --from {SAMPLE})"
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
            f"Hub dataset {name!r}: missing column(s) {missing} (name the columns with --text-field / --label-field); "
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

# --input-format auto: by suffix; plain lines for stdin and any other suffix
TEXT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}


def read_texts(path: str, input_format: str, cfg: PrepareConfig) -> Iterator[str]:
    """Texts to label, one at a time: plain lines, CSV (header or AG layout), JSON lines or a
    JSON array (objects with the text columns, or strings), Parquet.

    The same readers as for labeled files, so a file prepare or evaluate refuses is refused
    here too, with the same message; only the label column is optional. ``path`` "-" is
    standard input. An input without a single text is an error, as in evaluate.
    """
    if input_format == "auto":
        input_format = TEXT_FORMATS.get(Path(path).suffix.lower() if path != "-" else "", "lines")
    name = STDIN if path == "-" else Path(path)
    if input_format == "parquet":
        if path == "-":
            raise InputError("Parquet cannot be read from standard input: give the file's path")
        rows: Iterator[tuple[str, str]] = _read_parquet(name, cfg, labeled=False)
    elif input_format == "csv":
        rows = _from_input(path, lambda fh: _csv_rows(fh, name, cfg, None, strict=False, labeled=False))
    elif input_format == "jsonl":
        rows = _from_input(path, lambda fh: _json_rows(fh, name, cfg, labeled=False))
    elif input_format == "lines":
        rows = _from_input(path, lambda fh: _line_rows(fh, name))
    else:
        raise InputError(f"unknown input format {input_format!r} (auto, lines, csv, jsonl, parquet)")
    first = next(rows, None)
    if first is None:  # a header, blank lines or [] alone: nothing to label (evaluate says the same)
        raise InputError(f"{name}: no texts to label")
    yield first[0]
    yield from map(itemgetter(0), rows)


def _from_input(path: str, parse: Callable[[Iterable[str]], Iterator[tuple[str, str]]]) -> Iterator[tuple[str, str]]:
    with _open_input(path) as fh:
        yield from parse(fh)


@contextmanager
def _open_input(path: str):
    if path != "-":
        with _open_text(Path(path)) as fh:
            yield fh
        return
    # strict UTF-8 whatever the locale; detached afterwards so stdin itself stays open
    stream = io.TextIOWrapper(sys.stdin.buffer, encoding=ENCODING, newline="")
    try:
        yield BoundedLines(stream, STDIN)
    finally:
        stream.detach()


def _line_rows(fh: Iterable[str], path: Path) -> Iterator[tuple[str, str]]:
    """One text per line, blank lines included (each gets a record, so output lines up with input)."""
    lines = 0
    try:
        for line in fh:
            lines += 1
            yield line.rstrip("\r\n"), ""
    except UnicodeDecodeError as exc:
        raise _utf8_error(path, exc, lines) from None
    if lines == 0:
        raise _empty(path)
