"""Text input read safely: strict UTF-8 (a byte-order mark dropped), lines of bounded length,
standard input as a file, and errors that name the line of a byte that is not UTF-8."""

from __future__ import annotations

import io
import sys
from contextlib import contextmanager
from pathlib import Path

from ..util.errors import InputError

STDIN = Path("<stdin>")  # the name errors give standard input
# "utf-8-sig" decodes UTF-8 and drops a leading byte-order mark (Excel writes one)
ENCODING = "utf-8-sig"

# a longer line (or CSV field, or record) is refused: an endless one (/dev/zero, a file
# without line ends, a quote never closed) would otherwise be read into memory whole
MAX_LINE_CHARS = 1 << 24


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


def open_text(path: Path) -> BoundedLines:
    # newline="": the csv module finds record ends itself (a quoted field may hold newlines)
    try:
        return BoundedLines(open(path, newline="", encoding=ENCODING), path)
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


@contextmanager
def open_input(path: str):
    if path != "-":
        with open_text(Path(path)) as fh:
            yield fh
        return
    # strict UTF-8 whatever the locale; detached afterwards so stdin itself stays open
    stream = io.TextIOWrapper(sys.stdin.buffer, encoding=ENCODING, newline="")
    try:
        yield BoundedLines(stream, STDIN)
    finally:
        stream.detach()


def utf8_error(path: Path, exc: UnicodeDecodeError, lines_read: int = 0) -> InputError:
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


def empty_error(path: Path) -> InputError:
    return InputError(f"{path}: {'empty input' if path == STDIN else 'empty file'}")


# the csv module's words for a quote opened and never closed, which say nothing of the quote
