"""Directories swapped in whole: built under a temporary name beside the output, then exchanged
with it in one step where the system can (``renameat2``). What a killed command leaves is named
``.tmp-KIND-XXXXXXXX-NAME``; the next command to lock NAME puts it back or removes it (``recover``)."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import InputError, os_failure
from .fs import temp_affixes, through_link, umask

# a temporary entry is named ".tmp-KIND-XXXXXXXX-NAME" after the entry NAME it is for (KIND new:
# being built, old: swapped out, work: work files), so that the holder of NAME's lock knows its
# leftovers exactly (those of "run" and of "run-2" never look alike)
_LEFTOVER = re.compile(r"\.tmp-(new|old|work)-[a-z0-9_]{8}-(.+)", re.DOTALL)


_RENAME_EXCHANGE = 2  # linux/fs.h


_AT_FDCWD = -100


# what earlier versions left: ".tmp-XXXXXXXX", ".tmp-NAME-XXXXXXXX", ".tmp-NAME-work-XXXXXXXX"
_OLD_LEFTOVER = re.compile(r"\.tmp-(?:.+-)?[a-z0-9_]{8}", re.DOTALL)


def is_leftover(name: str) -> bool:
    """Whether a directory entry is one of classify's own leftovers (a killed command's
    temporaries, or an earlier version's lock file), which do not make an output non-empty."""
    return name == ".lock" or bool(_LEFTOVER.fullmatch(name) or _OLD_LEFTOVER.fullmatch(name))


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
        raise os_failure(exc, str(target)) from None
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
        tmp = Path(tempfile.mkdtemp(**temp_affixes("new", target.name), dir=target.parent))
        os.chmod(tmp, 0o777 & ~umask())
    except OSError as exc:
        raise os_failure(exc, str(target)) from None
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
            raise os_failure(exc, str(target)) from None
        raise


def _swap(new: Path, target: Path) -> Path:
    """Put ``new`` in ``target``'s place; returns where the old ``target`` now is. One atomic
    step where the system can (``exchange``); else two renames, the old directory leaving
    first as ``.tmp-old-*-NAME``, which ``recover`` puts back if the process dies between them."""
    if exchange(new, target):
        return new
    old = Path(tempfile.mkdtemp(**temp_affixes("old", target.name), dir=target.parent))
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
        raise os_failure(exc, str(folder)) from None
    for path in stale:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(path)


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
