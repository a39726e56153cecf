"""Crash-safe file writing: every artifact appears whole or not at all.

Files are written to a temporary name in the same directory, flushed, fsynced and renamed
into place; directories are built under a temporary name and swapped in (in one step where
the system can). A process killed at any moment leaves at worst a ``.tmp-*`` leftover that no
command loads, and that the next command to lock the output puts back or removes (``recover``).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from .errors import EnvironmentFailure, InputError

TMP_PREFIX = ".tmp-"
# a temporary entry is named ".tmp-KIND-XXXXXXXX-NAME" after the entry NAME it is for (KIND new:
# being built, old: swapped out, work: work files), so that the holder of NAME's lock knows its
# leftovers exactly (those of "run" and of "run-2" never look alike)
_LEFTOVER = re.compile(r"\.tmp-(new|old|work)-[a-z0-9_]{8}-(.+)", re.DOTALL)
_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _temp_affixes(kind: str, name: str) -> dict[str, str]:
    """``mkdtemp``/``mkstemp``'s prefix and suffix for a ``kind`` temporary of the entry ``name``."""
    return {"prefix": f"{TMP_PREFIX}{kind}-", "suffix": f"-{name}"}


# what earlier versions left: ".tmp-XXXXXXXX", ".tmp-NAME-XXXXXXXX", ".tmp-NAME-work-XXXXXXXX"
_OLD_LEFTOVER = re.compile(r"\.tmp-(?:.+-)?[a-z0-9_]{8}", re.DOTALL)


def is_leftover(name: str) -> bool:
    """Whether a directory entry is one of classify's own leftovers (a killed command's
    temporaries, or an earlier version's lock file), which do not make an output non-empty."""
    return name == ".lock" or bool(_LEFTOVER.fullmatch(name) or _OLD_LEFTOVER.fullmatch(name))


def through_link(path: Path) -> Path:
    """Where ``path`` writes go: the directory a symlink names (resolved once, so the swap and
    the lock are at the target and the link stays a link), else ``path``."""
    return Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)


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
def staged_file(path: Path, write: Callable[[Path], object], mode: int | None = None) -> Iterator[None]:
    """Have ``write(tmp)`` write a file at a temporary path and flush it to disk; when the
    block succeeds, rename it to ``path`` (a rename needs no space, so it cannot fail for a
    full disk). On an exception ``path`` is untouched: a file that must change only together
    with another is written before, and renamed after, the other's commit. The file gets
    ``mode``, or by default the umask's permissions."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(**_temp_affixes("new", path.name), dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise _os_failure(exc, str(path)) from None
    try:
        write(Path(tmp))
        # after writing: mkstemp's 0600 would make artifacts private, and a writer may have
        # replaced the file with one of its own (safetensors' save_file creates it 0600 too)
        os.chmod(tmp, 0o666 & ~_umask() if mode is None else mode)
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
        raise _os_failure(exc, str(path)) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise InputError(f"{path} is a directory; name a file to write")
    if st is not None and not stat.S_ISREG(st.st_mode):
        try:
            with open(path, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            raise _os_failure(exc, str(path)) from None
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
            raise _os_failure(exc, str(path)) from None


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
        raise _os_failure(exc, str(link)) from None
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


def check_replaceable(target: Path, ours: Callable[[Path], bool], what: str) -> None:
    """Refuse (exit 2) an output path that holds anything but what ``ours`` recognizes.

    Absent and empty directories are fine (classify's own leftovers, ``is_leftover``, do not
    count); a regular file or a directory of someone else's files is never replaced, so a
    mistyped ``--out`` cannot delete a user's work.
    """
    target = Path(target)
    if not os.path.lexists(target):
        return
    if not target.is_dir():
        raise InputError(f"--out {target} is not a directory; choose another --out or remove it")
    try:
        empty = all(is_leftover(p.name) for p in target.iterdir())
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
    (``RUN_DIR/checkpoint``). A symlink ``target`` stays: the directory it names is replaced.
    On an exception (or a kill) the temporary directory is removed (or left as ``.tmp-*``)
    and ``target`` is untouched.
    """
    target = through_link(Path(target))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(**_temp_affixes("new", target.name), dir=target.parent))
        os.chmod(tmp, 0o777 & ~_umask())
    except OSError as exc:
        raise _os_failure(exc, str(target)) from None
    try:
        yield tmp
        _fsync_tree(tmp)
        if ours is not None:
            check_replaceable(target, ours, what)
        if os.path.lexists(target):
            shutil.rmtree(_swap(tmp, target), ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise _os_failure(exc, str(target)) from None
        raise


def _swap(new: Path, target: Path) -> Path:
    """Put ``new`` in ``target``'s place; returns where the old ``target`` now is. One atomic
    step where the system can (``exchange``); else two renames, the old directory leaving
    first as ``.tmp-old-*-NAME``, which ``recover`` puts back if the process dies between them."""
    if exchange(new, target):
        return new
    old = Path(tempfile.mkdtemp(**_temp_affixes("old", target.name), dir=target.parent))
    os.rmdir(old)
    with _signals_held():  # Ctrl-C or SIGTERM between the renames would leave no target
        os.replace(target, old)
        os.replace(new, target)
    return old


def exchange(a: Path, b: Path) -> bool:
    """Swap the entries ``a`` and ``b`` (of one file system) in one atomic step, as Linux's
    ``renameat2(RENAME_EXCHANGE)`` does; False where the system or the file system cannot."""
    import ctypes

    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):  # an old kernel, a file system without it
        return False
    raise OSError(code, os.strerror(code), str(b))


@functools.cache
def _renameat2():
    """libc's ``renameat2`` (glibc 2.28 on, Linux 3.15 on), or None."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def recover(folder: Path, owns: Callable[[str], bool]) -> None:
    """What killed writers left in ``folder`` of the entries whose names ``owns``: an entry
    found only as ``.tmp-old-*-NAME`` (killed between a swap's renames) is put back, and every
    other such leftover removed. Only the holder of those entries' lock may call it: no live
    process is then writing them."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    olds: dict[str, list[str]] = {}
    stale = []
    for entry in entries:
        match = _LEFTOVER.fullmatch(entry.name)
        if match and owns(match[2]):
            (olds.setdefault(match[2], []) if match[1] == "old" else stale).append(entry.path)
    try:
        for name, paths in olds.items():
            if not os.path.lexists(Path(folder) / name):
                newest = max(paths, key=lambda p: os.lstat(p).st_ctime_ns)
                os.replace(newest, Path(folder) / name)
                paths.remove(newest)
            stale += paths
    except OSError as exc:
        raise _os_failure(exc, str(folder)) from None
    for path in stale:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(path)


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
    return Path(tempfile.mkdtemp(**_temp_affixes("work", Path(near).name), dir=parent))


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


_WRITERS = ("train", "tune", "prepare", "compress")  # what a lock file may name as its holder


class DirectoryLock:
    """An exclusive, non-blocking lock on a directory a command writes, for the command's whole
    life: ``.NAME.lock`` beside the directory (in its parent), so that swapping the directory
    in does not move the lock; a symlink's target is the directory locked (``through_link``).
    The kernel drops it when the process dies, however it dies. Taking it puts back or removes
    what killed writers of the directory left beside it (``recover``); ``directory`` is where to
    write."""

    def __init__(self, directory: Path, what: str):
        self.directory = through_link(Path(directory))
        absolute = Path(os.path.abspath(self.directory))
        self.name = absolute.name
        self.path = absolute.parent / f".{self.name}.lock"
        self.what = what
        self._fd: int | None = None
        self._created: list[Path] = []

    def __enter__(self) -> DirectoryLock:
        parent = self.path.parent
        self._created = [d for d in (parent, *parent.parents) if not os.path.lexists(d)]
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self._fd = _locked_file(self.path)
        except BlockingIOError:
            raise EnvironmentFailure(
                f"{self.directory} is in use by another {_holder(self.path)} (lock held); "
                "wait for it or choose another --out"
            ) from None
        except OSError as exc:
            self._remove_created()
            raise _os_failure(exc, str(self.path)) from None
        try:
            os.ftruncate(self._fd, 0)
            os.write(self._fd, f"{self.what} {os.getpid()}\n".encode())
            recover(parent, lambda name: name == self.name)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is None:
            return
        # removed while still held: a process that opened it meanwhile finds it gone (_locked_file)
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None
        self._remove_created()

    def _remove_created(self) -> None:
        """The parents made for the lock, where nothing else went into them."""
        for folder in self._created:
            with contextlib.suppress(OSError):
                folder.rmdir()


def _locked_file(path: Path) -> int:
    """A descriptor of the lock file ``path``, locked (``BlockingIOError`` where another
    process holds it)."""
    import fcntl  # POSIX: classify runs on Linux and macOS

    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            now, ours = os.stat(path, follow_symlinks=False), os.fstat(fd)
            if (now.st_dev, now.st_ino) == (ours.st_dev, ours.st_ino):
                return fd
        except FileNotFoundError:
            pass  # its holder removed it as this process opened it: take a new one
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _holder(path: Path) -> str:
    """Who holds the lock file ``path``, as it says (``train (pid 12)``)."""
    try:
        what, pid = path.read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError, ValueError):
        return "classify command"
    return f"{what} (pid {pid})" if what in _WRITERS and pid.isdigit() else "classify command"
