"""Crash-safe file writing: every artifact appears whole or not at all.

Files are written to a temporary name in the same directory, flushed, fsynced and renamed
into place; directories are built under a temporary name and swapped in. A process killed
at any moment leaves at worst a ``.tmp-*`` leftover that no command loads.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from .errors import EnvironmentFailure, InputError

TMP_PREFIX = ".tmp-"


def _os_failure(exc: OSError, what: str) -> EnvironmentFailure:
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = "permission denied (read-only?)"
    return EnvironmentFailure(f"cannot write {what}: {reason}")


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextlib.contextmanager
def staged_file(path: Path, write: Callable[[Path], object]) -> Iterator[None]:
    """Have ``write(tmp)`` write a file at a temporary path and flush it to disk; when the
    block succeeds, rename it to ``path`` (a rename needs no space, so it cannot fail for a
    full disk). On an exception ``path`` is untouched: a file that must change only together
    with another is written before, and renamed after, the other's commit."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise _os_failure(exc, str(path)) from None
    try:
        write(Path(tmp))
        # after writing: mkstemp's 0600 would make artifacts private, and a writer may have
        # replaced the file with one of its own (safetensors' save_file creates it 0600 too)
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        yield
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _os_failure(exc, str(path)) from None
        raise


def atomic_write_with(path: Path, write: Callable[[Path], object]) -> None:
    """Have ``write(tmp)`` write a file at a temporary path, then flush it to disk and rename
    it to ``path``: for writers that want a file name rather than bytes (safetensors)."""
    with staged_file(path, write):
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


def write_output(path: Path, data: bytes) -> None:
    """Write a file the user named (``--output``) without replacing anything but a regular
    file: through a symlink to the file it names (atomically), and straight into a FIFO or
    a device (``/dev/stdout``), which a rename would swap for a regular file."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode  # follows symlinks
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise _os_failure(exc, str(path)) from None
    if mode is not None and stat.S_ISDIR(mode):
        raise InputError(f"{path} is a directory; name a file to write")
    if mode is not None and not stat.S_ISREG(mode):
        try:
            with open(path, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            raise _os_failure(exc, str(path)) from None
        return
    # a symlink (even a dangling one) stays a link: the file it names is the one replaced
    atomic_write_bytes(Path(os.path.realpath(path)) if path.is_symlink() else path, data)


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


def check_replaceable(target: Path, ours: Callable[[Path], bool], what: str) -> None:
    """Refuse (exit 2) an output path that holds anything but what ``ours`` recognizes.

    Absent and empty directories are fine; a regular file or a directory of someone else's
    files is never replaced, so a mistyped ``--out`` cannot delete a user's work.
    """
    target = Path(target)
    if not os.path.lexists(target):
        return
    if not target.is_dir():
        raise InputError(f"--out {target} is not a directory; choose another --out or remove it")
    try:
        empty = next(target.iterdir(), None) is None
    except OSError as exc:
        raise _os_failure(exc, str(target)) from None
    if not empty and not ours(target):
        raise InputError(
            f"--out {target} holds files that are not {what}; refusing to replace them (choose another --out)"
        )


@contextlib.contextmanager
def atomic_directory(target: Path, ours: Callable[[Path], bool] | None = None, what: str = "") -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces ``target`` when the block succeeds.

    With ``ours``, an existing ``target`` is replaced only if it is empty or ``ours(target)``
    (``check_replaceable``, at the swap: callers check before their work too, and this catches
    a target that appeared meanwhile); without, the caller owns whatever is there
    (``RUN_DIR/checkpoint``). On an exception (or a kill) the temporary directory is removed
    (or left as ``.tmp-*``) and ``target`` is untouched.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{target.name}-", dir=target.parent))
        os.chmod(tmp, 0o777 & ~_umask())
    except OSError as exc:
        raise _os_failure(exc, str(target)) from None
    try:
        yield tmp
        _fsync_tree(tmp)
        if ours is not None:
            check_replaceable(target, ours, what)
        if target.exists():
            # swap: the old directory leaves under a temporary name, the new one takes its place
            old = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{target.name}-old-", dir=target.parent))
            os.rmdir(old)
            with _signals_held():  # Ctrl-C or SIGTERM between the renames would leave no target
                os.replace(target, old)
                os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise _os_failure(exc, str(target)) from None
        raise


def release_freed_memory() -> None:
    """Give memory freed by large temporaries back to the system (glibc keeps it in the
    process's heap otherwise, so the resident size stays at its high point); elsewhere a no-op."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def new_work_directory(near: Path) -> Path:
    """A fresh directory for work files, on the file system of ``near`` (in its nearest
    existing parent, so nothing is made for a command that then fails)."""
    parent = next(p for p in Path(near).absolute().parents if p.is_dir())
    return Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{Path(near).name}-work-", dir=parent))


@contextlib.contextmanager
def scratch_directory(near: Path) -> Iterator[Path]:
    """``new_work_directory(near)``, removed afterwards."""
    try:
        tmp = new_work_directory(near)
    except OSError as exc:
        raise _os_failure(exc, str(near)) from None
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back (delivered when the block ends), where the process can."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _fsync_tree(path: Path) -> None:
    for child in path.iterdir():
        if child.is_file():
            with open(child, "rb") as fh:
                os.fsync(fh.fileno())


class DirectoryLock:
    """An exclusive, non-blocking lock on a directory (released when the process dies)."""

    def __init__(self, directory: Path, what: str):
        self.path = Path(directory) / ".lock"
        self.what = what

    def __enter__(self) -> DirectoryLock:
        from filelock import FileLock, Timeout

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = FileLock(self.path, mode=0o644)
            self._lock.acquire(timeout=0)  # flock on Unix: the kernel drops it when the process dies
        except Timeout:
            raise EnvironmentFailure(
                f"{self.path.parent} is in use by another {self.what} (lock held); wait for it or choose another --out"
            ) from None
        except OSError as exc:
            raise _os_failure(exc, str(self.path.parent)) from None
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
