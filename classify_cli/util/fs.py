"""Files written whole or not at all, and read only where they are regular files.

Files are written to a temporary name in the same directory, flushed, fsynced and renamed
into place (directories: ``swap.py``); outputs are written through symlinks by the rules of
``write_output``. A process killed at any moment leaves at worst a ``.tmp-*`` leftover that no
command loads, and that the next command to lock the output puts back or removes (``recover``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from .errors import InputError, os_failure

TMP_PREFIX = ".tmp-"


def temp_affixes(kind: str, name: str) -> dict[str, str]:
    """``mkdtemp``/``mkstemp``'s prefix and suffix for a ``kind`` temporary of the entry ``name``."""
    return {"prefix": f"{TMP_PREFIX}{kind}-", "suffix": f"-{name}"}


def through_link(path: Path) -> Path:
    """Where ``path`` writes go: the directory a symlink names (resolved once, so the swap and
    the lock are at the target and the link stays a link), else ``path``."""
    return Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)


def umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextlib.contextmanager
def staged_file(path: Path, write: Callable[[Path], object], mode: int | None = None) -> Iterator[None]:
    """Have ``write(tmp)`` write a file at a temporary path and flush it to disk; when the
    block succeeds, rename it to ``path`` (a rename needs no space, so it cannot fail for a
    full disk). On an exception ``path`` is untouched: a file that must change only together
    with another is written before, and renamed after, the other's commit. The file gets
    ``mode``, or by default the umask's permissions."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(**temp_affixes("new", path.name), dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise os_failure(exc, str(path)) from None
    try:
        write(Path(tmp))
        # after writing: mkstemp's 0600 would make artifacts private, and a writer may have
        # replaced the file with one of its own (safetensors' save_file creates it 0600 too)
        os.chmod(tmp, 0o666 & ~umask() if mode is None else mode)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        yield
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise os_failure(exc, str(path)) from None
        raise


def atomic_write_with(path: Path, write: Callable[[Path], object], mode: int | None = None) -> None:
    """Have ``write(tmp)`` write a file at a temporary path, then flush it to disk and rename
    it to ``path``: for writers that want a file name rather than bytes (safetensors)."""
    with staged_file(path, write, mode):
        pass


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write_with(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json_text(obj))


def json_text(obj: Any) -> str:
    """A JSON file's text as classify writes them."""
    return json.dumps(obj, indent=1, ensure_ascii=False) + "\n"


def atomic_write_json_list(path: Path, items: list[Any], every: int = 8192) -> None:
    """``atomic_write_json(path, items)``, the same text, written ``every`` items at a time:
    ``json.dumps`` with an indent holds a string per item and per separator until it joins
    them, several times the list's own size for a vocabulary of short words."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write("[" if items else "[]\n")
            for lo in range(0, len(items), every):
                part = json.dumps(items[lo : lo + every], indent=1, ensure_ascii=False)[1:-2]
                fh.write(("," if lo else "") + part)
            fh.write("\n]\n" if items else "")

    atomic_write_with(path, write)


def write_output(path: Path, data: bytes) -> None:
    """Write a file the user named (``--output``) without replacing anything but a regular
    file: through a symlink to the file it names (each link checked by ``_check_link``),
    keeping an existing file's owner and mode, and straight into a FIFO or a device
    (``/dev/stdout``), which a rename would swap for a regular file."""
    path = _followed(Path(path))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise os_failure(exc, str(path)) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise InputError(f"{path} is a directory; name a file to write")
    if st is not None and not stat.S_ISREG(st.st_mode):
        try:
            with open(path, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            raise os_failure(exc, str(path)) from None
        return
    if st is None:
        atomic_write_bytes(path, data)
    elif _may_give(st):

        def write(tmp: Path) -> None:
            tmp.write_bytes(data)
            now = os.stat(tmp)
            if (now.st_uid, now.st_gid) != (st.st_uid, st.st_gid):
                os.chown(tmp, st.st_uid, st.st_gid)

        atomic_write_with(path, write, mode=stat.S_IMODE(st.st_mode))
    else:  # another user's file that this one may write: written in place, so it stays theirs
        try:
            with open(path, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            raise os_failure(exc, str(path)) from None


def _may_give(st: os.stat_result) -> bool:
    """Whether this process may give a new file the owner and group in ``st``."""
    if not hasattr(os, "geteuid"):
        return True  # no owners to keep
    return os.geteuid() == 0 or (st.st_uid == os.geteuid() and st.st_gid in (os.getegid(), *os.getgroups()))


def _followed(path: Path) -> Path:
    """The path a chain of symlinks at ``path`` leads to, each link checked by ``_check_link``."""
    for _ in range(40):  # the kernel's limit (ELOOP)
        if not os.path.islink(path):
            return path
        _check_link(path)
        path = Path(os.path.join(os.path.dirname(path), os.readlink(path)))
    raise InputError(f"{path}: too many levels of symbolic links")


def _check_link(link: Path) -> None:
    """Refuse (exit 2) to follow a symlink that another user planted in a shared directory, as
    the kernel's ``fs.protected_symlinks`` does: in a sticky world-writable directory (``/tmp``)
    a link is followed only when it is this user's or the directory owner's."""
    if not hasattr(os, "geteuid"):
        return
    try:
        owner = os.lstat(link).st_uid
        folder = os.stat(os.path.dirname(link) or ".")
    except OSError as exc:
        raise os_failure(exc, str(link)) from None
    shared = folder.st_mode & stat.S_ISVTX and folder.st_mode & stat.S_IWOTH
    if shared and owner not in (os.geteuid(), folder.st_uid):
        raise InputError(
            f"{link} is a symlink of another user's (uid {owner}) in the shared directory "
            f"{os.path.dirname(link) or '.'}; refusing to follow it (write to a path of your own)"
        )


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading, if it is a regular file (or a link to one). Anything else is
    refused (exit 2) before a byte is read: a FIFO would block the command for ever, a directory
    fail with EISDIR. Opened non-blocking, so that opening a FIFO returns at once; a missing
    file raises ``FileNotFoundError`` for the caller to explain."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kinds = {stat.S_ISDIR: "a directory", stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket"}
            kind = next((name for test, name in kinds.items() if test(mode)), "a device")
            raise InputError(f"{path} is {kind}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: Path) -> bytes:
    """The bytes of ``path``, a regular file (``open_regular``)."""
    with open_regular(path) as fh:
        return fh.read()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open_regular(path) as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def release_freed_memory() -> None:
    """Give memory freed by large temporaries back to the system (glibc keeps it in the
    process's heap otherwise, so the resident size stays at its high point); elsewhere a no-op."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
