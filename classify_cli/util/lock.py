"""What a writer keeps beside its output while it works: the lock (``.NAME.lock``, an ``flock``
held for the command's whole life) and its work directory (``.tmp-work-*-NAME``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import EnvironmentFailure, os_failure
from .fs import temp_affixes, through_link
from .swap import recover


def new_work_directory(near: Path) -> Path:
    """A fresh directory for work files, on the file system of ``near`` (in its nearest
    existing parent, so nothing is made for a command that then fails)."""
    parent = next(p for p in Path(near).absolute().parents if p.is_dir())
    return Path(tempfile.mkdtemp(**temp_affixes("work", Path(near).name), dir=parent))


@contextlib.contextmanager
def scratch_directory(near: Path) -> Iterator[Path]:
    """``new_work_directory(near)``, removed afterwards."""
    try:
        tmp = new_work_directory(near)
    except OSError as exc:
        raise os_failure(exc, str(near)) from None
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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
            raise os_failure(exc, str(self.path)) from None
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
