"""Where corpora come from: a file, a directory of split files, a Hub dataset; and the texts
``predict`` labels.

A ``Source`` maps split names to row readers; rows are ``(text, label)`` pairs with the label
as a string, read one at a time, so a corpus never has to fit in memory as text. The file
formats themselves are ``readers.py``'s.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from pathlib import Path
from urllib.parse import urlparse

from ..util.config import PrepareConfig
from ..util.errors import EnvironmentFailure, InputError
from .csvfile import CsvLayout
from .readers import FORMATS, LABELED_SUFFIXES, Label, format_of, label_list, label_text, read_rows
from .textio import ENCODING, STDIN

SPLIT_NAMES = {
    "train": ("train",),
    "validation": ("validation", "valid", "val", "dev"),
    "test": ("test",),
}
DEFAULT_HUB_DATASET = "fancyzhx/ag_news"
SAMPLE = "data/ag_news_sample"  # shipped with the repository, for an offline first run
SAMPLE_HINT = f"a clone of classify ships a 2,500-row AG News sample: --from {SAMPLE}"


@dataclass
class Source:
    """A corpus as split name -> row reader, plus the label names it declares (if any)."""

    description: str
    splits: dict[str, object]  # split name -> callable returning an iterator of rows
    label_names: list[str] | None = None
    files: dict[str, str] = field(default_factory=dict)

    def rows(self, split: str) -> Iterator[tuple[str, str]]:
        return self.splits[split]()  # type: ignore[operator]


@dataclass(frozen=True)
class Chunk:
    """Labeled rows of a split, read by ``labeled_chunks``: raw records that the process
    holding the chunk parses (``layout``: a worker, in parallel) or rows already read."""

    records: list
    first_line: int = 0
    layout: CsvLayout | None = None

    def rows(self) -> list[tuple[str, Label]]:
        """(text, label) pairs, labels stripped (a list of labels was, when read)."""
        rows = self.layout.parse_lines(self.first_line, self.records) if self.layout else self.records
        return [(text, label.strip() if isinstance(label, str) else label) for text, label in rows]


def labeled_chunks(source: Source, split: str, cfg: PrepareConfig, records: int) -> Iterator[Chunk]:
    """The one way to read a split's labeled rows in chunks of at most ``records``: a file in a
    format that splits into raw records (CSV) is split without parsing, so that workers parse
    it; any other source is read here. Rows whose label is not one the reader knows are kept
    (the caller counts them)."""
    from ..util.parallel import batches  # here: multiprocessing is no import of a predict

    file = source.files.get(split)
    chunker = FORMATS[fmt].chunks if file is not None and (fmt := format_of(file)) else None
    if chunker is not None:
        layout, raw = chunker(Path(file), cfg, source.label_names, records, strict=False)
        return (Chunk(lines, first, layout) for first, lines in raw)
    return (Chunk(rows) for rows in batches(source.rows(split), records, lambda row: len(row[0])))


_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]*$")  # ".csv", ".cvs"; not the ".5" of "OpenHermes-2.5"


def looks_like_path(source: str) -> bool:
    """Hub names are ``name`` or ``owner/name``, with no extension; anything else is a path
    (``./x``, ``a/b/c``, ``x.csv``, ``news.cvs``, ``~/x``, ``/abs/x``), whether it exists or not."""
    return (
        os.path.exists(source)
        or source.startswith((".", "/", "~"))
        or "\\" in source
        or source.count("/") > 1
        or "" in source.split("/")
        or bool(_EXTENSION.search(source))
    )


def no_such_data(source: str, command: str) -> InputError:
    """A missing local input; a name that could be a Hub dataset's is told how to fetch it."""
    if looks_like_path(source):
        return InputError(f"no such file or directory: {source}")
    return InputError(
        f"no such file or directory: {source} ({command} reads local data; "
        f"for the Hub dataset, run `classify prepare --from {source}` first)"
    )


def open_source(source: str, cfg: PrepareConfig) -> Source:
    """A local file or directory when ``source`` names one, else a Hub dataset name."""
    if looks_like_path(source):
        path = Path(source).expanduser()
        if not path.exists():
            raise no_such_data(source, "prepare")
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
                path / f"{stem}{suffix}" for suffix in LABELED_SUFFIXES if os.path.lexists(path / f"{stem}{suffix}")
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
        expected = ", ".join(f"train{suffix}" for suffix in LABELED_SUFFIXES)
        raise InputError(f"{path}: no train file (expected one of {expected})")
    names = _read_classes(path / "classes.txt")
    readers = {split: (lambda p=p: read_file(p, cfg, names)) for split, p in found.items()}
    return Source(str(path), readers, names, {s: str(p) for s, p in found.items()})


def _check_suffix(path: Path) -> None:
    if path.suffix.lower() not in LABELED_SUFFIXES:
        raise InputError(f"{path}: unsupported file type {path.suffix!r} (use {', '.join(LABELED_SUFFIXES)})")


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


HUB_BATCH_ROWS = 4096


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
                f"({SAMPLE_HINT})"
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
    # a Sequence(ClassLabel) (several labels per text) holds its names one level down
    listed = hasattr(label_feature, "feature")
    names = getattr(label_feature.feature if listed else label_feature, "names", None)
    names = list(names) if names is not None else None

    def label_of_value(label):
        if listed:
            return label_list((names[i] for i in label) if names is not None else label, Path(name), "row")
        return names[label] if names is not None else label_text(label, Path(name), "row")

    def reader(ds):
        # Arrow record batches, a column at a time: not a Python dict per row
        for batch in ds.iter(batch_size=HUB_BATCH_ROWS):
            columns = [batch[c] for c in cfg.text_fields]
            for i, label in enumerate(batch[cfg.label_field]):
                yield " ".join(column[i] or "" for column in columns), label_of_value(label)

    return Source(f"hf://{name}", {s: (lambda d=d: reader(d)) for s, d in splits.items()}, names)


# --- unlabeled texts for predict --------------------------------------------------------


def read_file(path: Path, cfg: PrepareConfig, class_names: list[str] | None = None) -> Iterator[tuple[str, str]]:
    """Rows of one labeled file, in the format its suffix picks."""
    _check_suffix(path)
    return read_rows(path, format_of(path), cfg, class_names)


def read_texts(path: str, input_format: str, cfg: PrepareConfig, id_field: str | None = None) -> Iterator:
    """Texts to label, one at a time, in any of ``FORMATS`` (``auto``: by suffix; plain lines
    for standard input and any other suffix).

    The same readers as for labeled files, so a file prepare or evaluate refuses is refused
    here too, with the same message; only the label column is optional. ``path`` "-" is
    standard input. An input without a single text is an error, as in evaluate. With
    ``id_field``, (text, id) pairs: the id column is read as a label column would be.
    """
    if input_format == "auto":
        input_format = (format_of(path) if path != "-" else None) or "lines"
    if input_format not in FORMATS:
        raise InputError(f"unknown input format {input_format!r} (auto, {', '.join(FORMATS)})")
    if id_field is not None:
        if not FORMATS[input_format].labeled:
            with_columns = ", ".join(name for name, f in FORMATS.items() if f.labeled)
            raise InputError(f"--id-field needs input with columns ({with_columns})")
        cfg = dataclasses.replace(cfg, label_field=id_field)
    rows = read_rows(path, input_format, cfg, labeled=id_field is not None, strict=False)
    first = next(rows, None)
    if first is None:  # a header, blank lines or [] alone: nothing to label (evaluate says the same)
        raise InputError(f"{STDIN if path == '-' else path}: no texts to label")
    if id_field is not None:
        for text, ident in chain((first,), rows):
            if isinstance(ident, tuple):  # a list of labels read where an id belongs
                raise InputError(f"{STDIN if path == '-' else path}: --id-field {id_field}: a list, not an id")
            yield text, ident
        return
    yield first[0]
    yield from map(itemgetter(0), rows)
