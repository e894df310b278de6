"""The app's per-user private directory for temporary files. No textual, no torch here.

The config the app hands to its training process and that process's stderr must not live where
another user can write (a shared runs dir, 0777 or 1777, lets them plant symlinks): they go in
`$XDG_RUNTIME_DIR/nntui`, else `TMPDIR/nntui-UID`, a directory created with mode 0700 and checked
before every use to be a real directory (not a symlink) of ours, mode 0700.
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from pathlib import Path

DIR_MODE = 0o700
STALE_S = 7 * 24 * 3600.0  # a file of a run left running that nothing wrote to for a week


class PrivateDirError(OSError):
    """The private directory exists but is not safe to use (a symlink, another owner, a wide mode)."""


def private_dir_path() -> Path:
    """Where the private directory goes: under `$XDG_RUNTIME_DIR` when it is set, else the temp dir."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        return Path(runtime) / "nntui"
    return Path(tempfile.gettempdir()) / f"nntui-{os.geteuid()}"


def check_private_dir(path: Path) -> Path:
    """`path` when it is a directory of ours with mode 0700 (looked at without following a
    symlink); PrivateDirError otherwise."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise PrivateDirError(f"{path} is not a directory (a symlink or a file): not using it")
    if info.st_uid != os.geteuid():
        raise PrivateDirError(f"{path} belongs to another user (uid {info.st_uid}): not using it")
    if stat.S_IMODE(info.st_mode) != DIR_MODE:
        raise PrivateDirError(f"{path} has mode {stat.S_IMODE(info.st_mode):04o}, not 0700: not using it")
    return path


def private_dir() -> Path:
    """The private directory, created (mode 0700) if missing, checked in any case."""
    path = private_dir_path()
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        pass  # ours from an earlier run, or planted: the check tells
    else:
        os.chmod(path, DIR_MODE, follow_symlinks=False)  # the umask may have taken bits away
    return check_private_dir(path)


def create_private_file(prefix: str, suffix: str) -> tuple[int, Path]:
    """A new file in the private directory, opened for writing: (descriptor, path).

    The name is new (O_CREAT|O_EXCL, never a symlink followed: O_NOFOLLOW) and the mode 0600,
    as `tempfile.mkstemp` makes it."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=private_dir())
    return fd, Path(name)


def prune_private_dir(max_age_s: float = STALE_S) -> None:
    """Remove the private dir's files untouched for `max_age_s` (the stderr of runs left running,
    which no app reads any more)."""
    try:
        directory = private_dir()
        entries = list(os.scandir(directory))
    except OSError:
        return
    cutoff = time.time() - max_age_s
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                os.unlink(entry.path)
        except OSError:
            pass


def append_private_log(name: str, text: str) -> Path | None:
    """Append `text` to the private directory's log file `name` (0600, no symlink followed);
    its path, or None when it cannot be written (logging must never fail the caller)."""
    try:
        path = private_dir() / name
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(text)
        return path
    except OSError:
        return None
