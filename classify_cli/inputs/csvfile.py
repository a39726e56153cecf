"""CSV files: a header naming the text and label columns, or the AG News layout (class index,
title, description; no header). Strict: a quote never closed is an error naming its line,
and no field or record may pass ``MAX_LINE_CHARS``."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from operator import itemgetter
from pathlib import Path

from ..util.config import PrepareConfig
from ..util.errors import InputError
from ..util.parallel import BATCH_CHARS
from .textio import MAX_LINE_CHARS, empty_error, open_text, utf8_error

csv.field_size_limit(MAX_LINE_CHARS)


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
            twice = sorted({col for col in wanted if first_row.count(col) > 1})
            if twice:  # which of the columns is meant? csv.DictReader would take the last, silently
                raise InputError(f"{path}: the header names column(s) {twice} more than once; rename them")
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


def csv_rows(
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
            raise empty_error(path)
        layout = CsvLayout(first, cfg, class_names, path, strict, labeled)
        yield from layout.rows(rows if layout.header is not None else chain((first,), rows), records.line)
    except UnicodeDecodeError as exc:
        raise utf8_error(path, exc, records.line()) from None
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
    fh = open_text(path)

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
        raise utf8_error(path, exc) from None
    except csv.Error as exc:
        fh.close()
        raise _malformed(path, 1, exc) from None
    if not first:
        fh.close()
        raise empty_error(path)
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
                raise utf8_error(path, exc, line_no - 1) from None
            if chunk:
                yield start, chunk

    return layout, chunks()
