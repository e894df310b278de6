"""One home for a run directory's names and for writing its files safely. No torch here.

Every file of a run is reached through the descriptor of a directory that was checked to be the
user's own, never through a symbolic link, and is created 0600 (directories 0700). With a runs
dir that other users can write (0777, or 1777 like /tmp), neither a planted link nor a run
directory swapped for another can make a run write anywhere but its own files: once open, the
directory is the same one whatever later happens to its path. Whether a directory is the user's
own is `nntui.ownership`'s to say.

Every failure to write is an OSError whose text is one line for the user, naming the cause and
the file: `StorageError` ("no space left on device: runs/x/metrics.jsonl") or `ForeignPathError`
(a link, another user's directory, not a directory).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path
from typing import Iterator, Union

from nntui.ownership import ownership_problem  # part of this module's API too (channel.py uses it)

FILE_MODE = 0o600
DIR_MODE = 0o700
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a planted FIFO must not block the open
_DIR_FLAGS = os.O_RDONLY | _DIRECTORY | _CLOEXEC
_NO_DIR_SYNC = (errno.EINVAL, errno.EBADF, errno.ENOTSUP, errno.EROFS)  # file systems that cannot

Data = Union[bytes, bytearray, memoryview]


class StorageError(OSError):
    """Creating or writing a run's file failed; `str()` is the cause and the file, on one line."""

    def __str__(self) -> str:
        cause = self.strerror or "input/output error"
        return f"{cause[:1].lower()}{cause[1:]}: {self.filename}"


class ForeignPathError(PermissionError):
    """A path that must be the user's own directory or file is not (a link, another user's, a FIFO)."""


def storage_error(error: OSError, path: str | os.PathLike[str]) -> OSError:
    """`error` as a one-line StorageError naming `path` (errors of this module pass unchanged)."""
    if isinstance(error, (StorageError, ForeignPathError)):
        return error
    return StorageError(error.errno or errno.EIO, error.strerror or str(error), str(path))


def _write_all(fd: int, data: Data) -> None:
    view = memoryview(data).cast("B")
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


class OwnDir:
    """An open directory checked to be the user's own; its files are reached through its descriptor."""

    def __init__(self, fd: int, path: str | os.PathLike[str], label: str = "") -> None:
        self.fd, self.path, self.label = fd, Path(path), label
        self.failure: OSError | None = None  # the first `write_atomic` in it that failed

    @classmethod
    def create(cls, path: str | os.PathLike[str], label: str = "directory", exclusive: bool = True) -> OwnDir:
        """Make `path` (mode 0700) -- with `exclusive`, refusing one that exists -- and open it.

        Its parents (a runs dir) are made as usual, links and all: they are the user's choice.
        """
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            parent = os.open(path.parent, _DIR_FLAGS)
        except OSError as error:
            raise storage_error(error, path.parent) from None
        try:
            return cls(parent, path.parent).subdir(path.name, create=True, exclusive=exclusive, label=label)
        finally:
            os.close(parent)

    @classmethod
    def open(cls, path: str | os.PathLike[str], label: str = "directory", follow: bool = False) -> OwnDir:
        """Open an existing directory of the user's; `follow` lets its last component be a link."""
        try:
            fd = os.open(path, _DIR_FLAGS | (0 if follow else _NOFOLLOW))
        except OSError as error:
            raise _open_refusal(error, path, label) from None
        return cls._checked(fd, path, label, private=False)

    def subdir(self, name: str, create: bool = False, exclusive: bool = False, label: str = "directory",
               private: bool = False) -> OwnDir:
        """The directory `name` in this one (made 0700 when `create`), never through a link."""
        made = False
        if create:
            try:
                os.mkdir(name, DIR_MODE, dir_fd=self.fd)
                made = True
            except FileExistsError:
                if exclusive:
                    raise ForeignPathError(f"{label} {self.path / name} already exists; refusing") from None
            except OSError as error:
                raise storage_error(error, self.path / name) from None
        try:
            fd = os.open(name, _DIR_FLAGS | _NOFOLLOW, dir_fd=self.fd)
        except OSError as error:
            raise _open_refusal(error, self.path / name, label, self.fd) from None
        directory = self._checked(fd, self.path / name, label, private and not made)
        if made:
            os.fchmod(fd, DIR_MODE)  # mkdir's mode is filtered by the umask
        return directory

    @classmethod
    def _checked(cls, fd: int, path: str | os.PathLike[str], label: str, private: bool) -> OwnDir:
        directory = cls(fd, path, label)
        try:
            directory.check(private)
        except BaseException:
            directory.close()
            raise
        return directory

    def check(self, private: bool = False) -> None:
        """ForeignPathError unless the open directory is (still) the user's, and private if asked."""
        problem = ownership_problem(os.fstat(self.fd), self.path, private)
        if problem:
            raise ForeignPathError(f"{self.label} {problem}".strip())

    def make_private(self) -> None:
        """Mode 0700 (a run made before runs were private becomes private when continued)."""
        os.fchmod(self.fd, DIR_MODE)

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)

    def __enter__(self) -> OwnDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write_atomic(self, name: str, data: Data, durable: bool = True) -> None:
        """Replace `name` whole: readers see the old file or the new one, never a part of either.

        An exclusive temp file in this directory, fsynced (when `durable`), renamed over `name`,
        then the directory fsynced. On any failure the temp file is removed and `name` untouched.
        """
        fd, tmp = self._create_temp(name)
        try:
            try:
                _write_all(fd, data)
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException as error:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=self.fd)
            if isinstance(error, OSError):
                failure = storage_error(error, self.path / name)
                self.failure = self.failure or failure
                raise failure from None
            raise
        if durable:
            self.sync(name)

    def _create_temp(self, name: str) -> tuple[int, str]:
        for _ in range(100):
            tmp = f".{name}.{secrets.token_hex(4)}.tmp"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, FILE_MODE,
                             dir_fd=self.fd)
            except FileExistsError:
                continue
            except OSError as error:
                raise storage_error(error, self.path / name) from None
            os.fchmod(fd, FILE_MODE)  # a strict umask must not leave the owner unable to read it
            return fd, tmp
        raise StorageError(errno.EEXIST, "no free temporary file name", str(self.path / name))

    def sync(self, name: str = "") -> None:
        """fsync the directory itself (a rename is durable only then)."""
        try:
            os.fsync(self.fd)
        except OSError as error:
            if error.errno not in _NO_DIR_SYNC:
                raise storage_error(error, self.path / name if name else self.path) from None

    def open_append(self, name: str) -> AppendFile:
        """`name` opened to append (created 0600 when missing), never through a link."""
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        return AppendFile(self.open_file(name, flags), self.path / name)

    def open_file(self, name: str, flags: int = os.O_RDONLY) -> int:
        """A descriptor of the regular file `name`, never through a link; made 0600 if it is written."""
        try:
            fd = os.open(name, flags | _NOFOLLOW | _NONBLOCK | _CLOEXEC, FILE_MODE, dir_fd=self.fd)
        except OSError as error:
            raise _open_refusal(error, self.path / name, "file", self.fd) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
                raise ForeignPathError(f"{self.path / name} is not a file of yours; refusing")
            os.set_blocking(fd, True)
            if flags & (os.O_WRONLY | os.O_RDWR):
                os.fchmod(fd, FILE_MODE)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def read_bytes(self, name: str, limit: int = -1) -> bytes:
        """The content of the file `name` (at most `limit` bytes when given); FileNotFoundError if missing."""
        with open(self.open_file(name), "rb") as handle:
            return handle.read(limit)

    def unlink(self, name: str) -> bool:
        """Remove the file `name`; False when it was already gone."""
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            return False
        return True

    def names(self) -> list[str]:
        return os.listdir(self.fd)  # a descriptor: not through a path someone may have swapped

    def scandir(self) -> Iterator[os.DirEntry[str]]:
        """Entries whose `path` is their name: use them with this directory's methods."""
        return os.scandir(self.fd)

    def remove_contents(self) -> None:
        """Remove everything inside this directory (links themselves, never what they point at)."""
        for entry in self.scandir():
            if entry.is_dir(follow_symlinks=False):
                with self.subdir(entry.name) as inner:
                    inner.remove_contents()
                os.rmdir(entry.name, dir_fd=self.fd)
            else:
                self.unlink(entry.name)

    def remove(self) -> None:
        """Remove this directory and its contents; its path only if it still names this directory."""
        self.remove_contents()
        own = os.fstat(self.fd)
        with contextlib.suppress(OSError):
            parent = os.open(self.path.parent, _DIR_FLAGS)
            try:
                there = os.stat(self.path.name, dir_fd=parent, follow_symlinks=False)
                if (there.st_dev, there.st_ino) == (own.st_dev, own.st_ino):
                    os.rmdir(self.path.name, dir_fd=parent)
            finally:
                os.close(parent)


def _open_refusal(error: OSError, path: str | os.PathLike[str], label: str, dir_fd: int | None = None) -> OSError:
    """The error of an `os.open(..., O_NOFOLLOW)`: a link or a non-directory is refused."""
    if error.errno in (errno.ELOOP, errno.ENOTDIR):
        try:
            link = stat.S_ISLNK(os.lstat(Path(path).name if dir_fd is not None else path, dir_fd=dir_fd).st_mode)
        except OSError:
            link = error.errno == errno.ELOOP
        what = "is a symbolic link" if link else "is not a directory"
        return ForeignPathError(f"{label} {path} {what}; refusing".strip())
    if isinstance(error, FileNotFoundError):
        return error
    return storage_error(error, path)


class AppendFile:
    """A file appended to line by line; a write that fails leaves the file as it was before it."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd, self.path = fd, path
        self.size = os.fstat(fd).st_size

    def write(self, data: Data) -> None:
        """Append `data` whole, or raise StorageError with the file cut back to its old end."""
        try:
            _write_all(self.fd, data)
        except OSError as error:
            with contextlib.suppress(OSError):  # a partial line would swallow the next record
                os.ftruncate(self.fd, self.size)
            raise storage_error(error, self.path) from None
        self.size += len(data)

    def sync(self) -> None:
        try:
            os.fsync(self.fd)
        except OSError as error:
            raise storage_error(error, self.path) from None

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


_held: dict[str, OwnDir] = {}


def hold(directory: OwnDir) -> None:
    """Let `held_dir(directory.path)` hand out this open directory (see `own_dir`)."""
    _held[os.path.abspath(directory.path)] = directory


def release(directory: OwnDir) -> None:
    if _held.get(os.path.abspath(directory.path)) is directory:
        del _held[os.path.abspath(directory.path)]


@contextlib.contextmanager
def own_dir(path: str | os.PathLike[str], label: str = "directory") -> Iterator[OwnDir]:
    """The directory `path` to write in: the open one this process holds for it (the checkpoints of
    the run it trains, held since the run directory was made or checked), else made or opened now
    (no link at its last component, the user's own)."""
    held = _held.get(os.path.abspath(path))
    if held is not None and held.fd >= 0:
        yield held
        return
    with OwnDir.create(path, label, exclusive=False) as directory:
        yield directory


class RunDir:
    """The names of a run directory's files (CONTRACT.md, "A run directory"), and its safe opening."""

    CONFIG = "config.toml"
    METRICS = "metrics.jsonl"
    SUMMARY = "summary.json"
    ERROR_LOG = "error.log"
    OUTPUT_LOG = "output.log"  # `nntui run SCRIPT.py`: the script's stdout and stderr
    CHECKPOINTS = "checkpoints"
    LAST = "last.pt"
    BEST = "best.pt"
    CONTROL = "control"
    PID = "pid"
    INBOX = "inbox"
    ACKS = "acks"
    LABEL = "run directory"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    config = property(lambda self: self.path / self.CONFIG)
    metrics = property(lambda self: self.path / self.METRICS)
    summary = property(lambda self: self.path / self.SUMMARY)
    error_log = property(lambda self: self.path / self.ERROR_LOG)
    checkpoints = property(lambda self: self.path / self.CHECKPOINTS)
    last_checkpoint = property(lambda self: self.path / self.CHECKPOINTS / self.LAST)
    best_checkpoint = property(lambda self: self.path / self.CHECKPOINTS / self.BEST)
    control = property(lambda self: self.path / self.CONTROL)
    pid_file = property(lambda self: self.path / self.CONTROL / self.PID)
    inbox = property(lambda self: self.path / self.CONTROL / self.INBOX)
    acks = property(lambda self: self.path / self.CONTROL / self.ACKS)

    def create(self) -> OwnDir:
        """Make the run directory exclusively (0700, the user's own) and open it."""
        return OwnDir.create(self.path, self.LABEL, exclusive=True)

    def open(self) -> OwnDir:
        """Open the existing run directory to continue it: no link, the user's own; made 0700."""
        directory = OwnDir.open(self.path, self.LABEL)
        try:
            directory.make_private()
        except OSError as error:
            directory.close()
            raise storage_error(error, self.path) from None
        return directory
