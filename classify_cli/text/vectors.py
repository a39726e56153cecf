"""Pretrained word vectors (GloVe, word2vec, fastText files), read for a training vocabulary.

Formats: text with one ``word v1 ... vd`` line per word (GloVe), the same after a
``count dim`` header line (word2vec and fastText ``.vec``), either gzipped, and word2vec's
binary format (the header, then each word, a space and d little-endian float32).

The file is read in blocks of lines, each parsed by numpy at once, and its words are looked up
in the vocabulary's hash table (``TokenTable``), a block at a time: no Python object per
number, and no dict of the file's words. Only the vectors kept are held: those of training
words, and (``keep``) those of words training never saw, which the model keeps so that texts
using them still get their meaning.

Words meet tokens through the tokenizer: a vector's word is taken for the token the
tokenizer makes of it (``basic_english`` lower-cases, so "Paris" stands for "paris"), and only
where it makes exactly one ("u.s." becomes four tokens and can never occur). Where several
words give the same token, the file's first wins: vectors files list frequent words first.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..util.errors import InputError
from ..util.fs import open_regular
from .token_table import TokenTable, token_keys
from .tokens import basic_english_utf8

BLOCK_BYTES = 1 << 21  # bytes parsed at a time: a few thousand lines, temporaries of a few MB
MAX_DIM = 4096  # as model.embed_dim
# the mean length the vectors are scaled to: on subsets of 300 and 1,000 AG News documents
# (judged on other train documents) 1 beat 0.3, 2, 3 and 10, at learning rates 0.5 to 8
# (docs/benchmarks.md)
ROW_NORM = 1.0


@dataclass
class Vectors:
    """What a vectors file gives a vocabulary of ``vocab_size`` words."""

    dim: int
    rows: np.ndarray  # (vocab_size, dim): the vector of each vocabulary word that has one
    matched: np.ndarray  # (vocab_size,) bool: which do
    extra_tokens: list[bytes]  # tokens outside the vocabulary whose vectors are kept, file order
    extra_rows: np.ndarray  # (len(extra_tokens), dim)
    info: dict = field(default_factory=dict)  # what model.json records

    @property
    def scale(self) -> float:
        """What the vectors are multiplied by: their mean length then becomes ``ROW_NORM``."""
        found = self.rows[self.matched] if self.matched.any() else self.extra_rows
        mean = float(np.linalg.norm(found, axis=1).mean()) if len(found) else 0.0
        return ROW_NORM / mean if mean > 0 else 1.0


def read_vectors(
    path: Path,
    vocab: TokenTable,
    vocab_size: int,
    keep: str | int = "train",
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Vectors:
    """The vectors in ``path`` for the words of ``vocab`` (ids below ``vocab_size``), and for
    the others ``keep`` asks for. Any malformed line is refused with its line number."""
    path = Path(path)
    try:
        raw = open_regular(path)
    except FileNotFoundError:
        raise InputError(f"vectors file not found: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read vectors file {path}: {exc.strerror or exc}") from None
    with raw:
        total = raw.seek(0, 2)
        raw.seek(0)
        if total == 0:
            raise InputError(f"{path}: the vectors file is empty")
        digest = hashlib.sha256()
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        hashed = _Hashed(raw, digest)
        stream = gzip.GzipFile(fileobj=hashed) if gzipped else hashed
        reader = _Reader(path, vocab, vocab_size, keep)
        try:
            for words, values, line in _records(path, stream):
                reader.add(words, values, line)
                progress(hashed.done, total)
        except (OSError, EOFError, zlib.error) as exc:
            if not gzipped:
                raise
            raise InputError(f"{path}: not a readable gzip file ({exc})") from None
        while hashed.read(BLOCK_BYTES):  # the checksum covers the whole file, trailing bytes too
            pass
        vectors = reader.finish()
    vectors.info = {
        "file": path.name,
        "sha256": digest.hexdigest(),
        "dim": vectors.dim,
        "words": reader.words,
        "matched": int(vectors.matched.sum()),
        "kept": len(vectors.extra_tokens),
        "vocab": keep,
    }
    return vectors


class _Hashed:
    """A file read through, every byte added to a checksum as it goes."""

    def __init__(self, fh, digest):
        self.fh, self.digest, self.done = fh, digest, 0

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.digest.update(data)
        self.done += len(data)
        return data

    def readable(self) -> bool:
        return True


def _records(path: Path, stream) -> Iterator[tuple[list[bytes], np.ndarray, int]]:
    """Blocks of (words, their vectors, the line number of the first), in file order."""
    buffer, body = b"", b""
    while True:  # up to the end of the first line that holds anything
        chunk = stream.read(BLOCK_BYTES)
        buffer += chunk
        body = buffer.lstrip()
        if not chunk or (body and b"\n" in body):
            break
    if not body:
        raise InputError(f"{path}: the vectors file holds no vectors")
    line = 1 + buffer[: len(buffer) - len(body)].count(b"\n")
    head, _, rest = body.partition(b"\n")
    fields = head.split()
    header = len(fields) == 2 and all(f.isdigit() for f in fields)
    if header:
        count, dim = int(fields[0]), int(fields[1])
        if not 1 <= dim <= MAX_DIM:
            raise InputError(f"{path}:{line}: the header gives dimension {dim}; it must be between 1 and {MAX_DIM}")
        if _looks_binary(rest):
            yield from _binary_records(path, stream, rest, count, dim)
            return
        yield from _text_records(path, stream, rest, dim, line + 1)
        return
    if _looks_binary(body):
        raise InputError(
            f"{path}: not a vectors text file (it holds binary data; word2vec's binary format needs its header)"
        )
    dim = len(fields) - 1
    if dim < 1:
        raise InputError(f"{path}:{line}: a line needs a word and its values; this one has {len(fields)} field(s)")
    yield from _text_records(path, stream, body, dim, line)


def _looks_binary(data: bytes) -> bool:
    sample = data[:4096]
    if b"\x00" in sample:
        return True
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(sample) - 4  # a character cut by the sample's end is not binary
    return False


def _text_records(path: Path, stream, pending: bytes, dim: int, line: int):
    while True:
        chunk = stream.read(BLOCK_BYTES)
        data = pending + chunk
        if chunk:
            cut = data.rfind(b"\n") + 1
            data, pending = data[:cut], data[cut:]
            if not data:
                continue
        elif not data:
            return
        words, values, lines = _parse_text(path, data, dim, line)
        if words:
            yield words, values, line
        line += lines
        if not chunk:
            return


def _parse_text(path: Path, data: bytes, dim: int, first_line: int) -> tuple[list[bytes], np.ndarray, int]:
    """The words and values of whole lines ``data``; and how many lines it held."""
    if b"\x00" in data:
        at = first_line + data[: data.index(b"\x00")].count(b"\n")
        raise InputError(f"{path}:{at}: binary data in a vectors text file")
    byte = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(byte == 10)
    n_lines = len(newlines) + (not data.endswith(b"\n"))
    # where tokens start and end (the whitespace bytes.split() splits on: 9-13 and 32)
    word = np.zeros(len(data) + 2, dtype=bool)
    np.logical_and(byte - np.uint8(9) > 4, byte != 32, out=word[1:-1])
    edges = np.flatnonzero(word[1:] != word[:-1])
    starts, ends = edges[0::2], edges[1::2]
    # tokens per line: how many start before each line's end, less those before its start
    line_ends = np.append(newlines, len(data))[:n_lines]
    before_end = np.searchsorted(starts, line_ends)
    first_token = np.concatenate([[0], before_end[:-1]])
    per_line = before_end - first_token
    bad = np.flatnonzero((per_line != 0) & (per_line != dim + 1))
    if len(bad):
        at = int(bad[0])
        raise InputError(
            f"{path}:{first_line + at}: {max(int(per_line[at]) - 1, 0)} values after the word; "
            f"the file's vectors have {dim} (ragged rows)"
        )
    used = np.flatnonzero(per_line)
    word_starts, word_ends = starts[first_token[used]], ends[first_token[used]]
    words = [data[s:e] for s, e in zip(word_starts.tolist(), word_ends.tolist(), strict=True)]
    try:
        values = np.loadtxt(
            io.BytesIO(data),
            dtype=np.float32,
            usecols=range(1, dim + 1),
            comments=None,
            quotechar=None,
            delimiter=" ",  # not any whitespace: a word may hold U+0085, which latin-1 reads from UTF-8's bytes
            encoding="latin-1",  # the words are skipped; any bytes will do
            ndmin=2,
        )
    except ValueError:  # a non-number, or values apart by more than one space: line by line
        values = np.empty((len(used), dim), dtype=np.float32)
        for i, at in enumerate(used.tolist()):
            tokens = data[word_ends[i] : line_ends[at]].split()
            try:
                values[i] = [float(token) for token in tokens]
            except ValueError:
                token = next(t for t in tokens if not _is_number(t))
                raise InputError(f"{path}:{first_line + at}: {_shown(token)} is not a number") from None
    _check_finite(path, values, used + first_line)
    return words, values, n_lines


def _binary_records(path: Path, stream, pending: bytes, count: int, dim: int):
    """word2vec's binary format: ``word`` + space + dim float32, each record maybe after a newline."""
    size = 4 * dim
    buffer, pos, seen = pending, 0, 0
    words: list[bytes] = []
    rows: list[bytes] = []
    while seen < count:
        space = buffer.find(b" ", pos)
        if space < 0 or space + 1 + size > len(buffer):
            chunk = stream.read(BLOCK_BYTES)
            if not chunk:
                raise InputError(f"{path}: the header promises {count:,} vectors; the file ends after {seen:,}")
            buffer, pos = buffer[pos:] + chunk, 0
            continue
        word = buffer[pos:space].lstrip(b"\n")
        if not word or len(word) > 1000:
            raise InputError(f"{path}: record {seen + 1} is not a word and its vector (a malformed binary file)")
        words.append(word)
        rows.append(buffer[space + 1 : space + 1 + size])
        pos, seen = space + 1 + size, seen + 1
        if len(words) == 8192 or seen == count:
            values = np.frombuffer(b"".join(rows), dtype="<f4").reshape(len(words), dim).astype(np.float32)
            _check_finite(path, values, np.arange(seen - len(words), seen) + 1, "record")
            yield words, values, seen - len(words) + 1
            words, rows = [], []
    if buffer[pos:].strip() or stream.read(1):
        raise InputError(f"{path}: data after the {count:,} vectors the header announces")


def _check_finite(path: Path, values: np.ndarray, lines: np.ndarray, what: str = "") -> None:
    bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
    if len(bad):
        where = f"{path}: {what} {lines[bad[0]]}" if what else f"{path}:{lines[bad[0]]}"
        raise InputError(f"{where}: the vector holds NaN or infinity")


def _is_number(token: bytes) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _shown(token: bytes) -> str:
    text = token[:40].decode("utf-8", "replace")
    return repr(text + ("..." if len(token) > 40 else ""))


class _Reader:
    """Vectors matched to a vocabulary block by block; duplicates and unusable words counted."""

    def __init__(self, path: Path, vocab: TokenTable, vocab_size: int, keep: str | int):
        self.path, self.vocab_size, self.keep = path, vocab_size, keep
        self.lookup = vocab.with_default(-1).lookup
        self.dim: int | None = None
        self.rows: np.ndarray | None = None
        self.matched = np.zeros(vocab_size, dtype=bool)
        self.extra_tokens: list[bytes] = []
        self.extra_rows: list[np.ndarray] = []
        # every word's key as written and its place in the file, to find a word given twice
        self.keys: list[np.ndarray] = []
        self.places: list[np.ndarray] = []
        self.long_words: set[bytes] = set()
        self.words = 0
        self.changed = 0  # words that stand for a token other than themselves ("Paris": "paris")

    def add(self, words: list[bytes], values: np.ndarray, line: int) -> None:
        if self.dim is None:
            self.dim = values.shape[1]
            self.rows = np.zeros((self.vocab_size, self.dim), dtype=np.float32)
        self._remember(words)
        tokens = self._tokens(words, line)
        index = np.flatnonzero([t is not None for t in tokens])
        ids = self.lookup(b" ".join(tokens[i] for i in index)) if len(index) else np.zeros(0, np.int64)
        # vocabulary words: the first vector given for each
        hit = ids >= 0
        for i, word_id in zip(index[hit].tolist(), ids[hit].tolist(), strict=True):
            if not self.matched[word_id]:
                self.matched[word_id] = True
                self.rows[word_id] = values[i]
        # the others, in file order, as far as keep says (duplicates among them go at the end)
        if self.keep != "train":
            others = index[~hit]
            if isinstance(self.keep, int):
                others = others[others < self.keep - self.words]
            self.extra_tokens += [tokens[i] for i in others.tolist()]
            self.extra_rows.append(values[others])
        self.words += len(words)

    def _remember(self, words: list[bytes]) -> None:
        first, second, short = token_keys(words)
        self.keys.append(np.stack([first.view(np.int64), second.view(np.int64)], axis=1))
        self.places.append(np.flatnonzero(short) + self.words)
        for i in np.flatnonzero(~short).tolist():
            if words[i] in self.long_words:
                raise InputError(f"{self.path}: the word {_shown(words[i])} is given twice")
            self.long_words.add(words[i])

    def _tokens(self, words: list[bytes], line: int) -> list[bytes | None]:
        """The token each word stands for, or None where the tokenizer makes it anything but one."""
        try:
            text = b"\n".join(words).decode("utf-8")
        except UnicodeDecodeError as exc:
            at = line + b"\n".join(words)[: exc.start].count(b"\n")
            raise InputError(f"{self.path}:{at}: a word that is not UTF-8 (a binary file given as text?)") from None
        pieces = basic_english_utf8(text).split(b"\n")
        tokens = [p[0] if len(p) == 1 else None for p in (piece.split() for piece in pieces)]
        self.changed += sum(t is not None and t != w for t, w in zip(tokens, words, strict=True))
        return tokens

    def finish(self) -> Vectors:
        if self.dim is None or self.words == 0:
            raise InputError(f"{self.path}: the vectors file holds no vectors")
        keys = np.concatenate(self.keys)
        order = np.lexsort((keys[:, 1], keys[:, 0]))
        ordered = keys[order]
        twice = np.flatnonzero((ordered[1:] == ordered[:-1]).all(axis=1))
        if len(twice):
            where = np.sort(np.concatenate(self.places)[order[twice[0] : twice[0] + 2]])
            raise InputError(f"{self.path}: a word is given twice (vectors {where[0] + 1:,} and {where[1] + 1:,})")
        extra_rows = np.concatenate(self.extra_rows) if self.extra_rows else np.zeros((0, self.dim), np.float32)
        tokens = self.extra_tokens
        if tokens and self.changed:  # "Paris" and "paris" both give "paris": the first stays
            table = TokenTable.build(tokens, range(len(tokens)), -1)
            first = table.lookup(b" ".join(tokens))
            keep = first == np.arange(len(tokens))
            extra_rows = extra_rows[keep]
            tokens = [t for t, k in zip(tokens, keep.tolist(), strict=True) if k]
        return Vectors(self.dim, self.rows, self.matched, tokens, np.ascontiguousarray(extra_rows))
