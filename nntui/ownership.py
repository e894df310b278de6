"""Whose a file or directory is: the user names shown for other users' runs, and the check that a
directory is the user's own (no link, owned by the user, private when asked). No torch here."""

from __future__ import annotations

import os
import stat


def user_name(uid: int) -> str:
    """The login name of `uid`, or the number when it has none."""
    try:
        import pwd  # not on Windows

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


def ownership_problem(info: os.stat_result, path: str | os.PathLike[str], private: bool = False) -> str | None:
    """Why a directory with lstat/fstat `info` is not the user's own (None when it is).

    `private` also refuses group/other permission bits (the control channel's access check).
    """
    if stat.S_ISLNK(info.st_mode):
        return f"{path} is a symbolic link; refusing"
    if not stat.S_ISDIR(info.st_mode):
        return f"{path} is not a directory; refusing"
    uid = os.getuid()
    if info.st_uid != uid:
        return f"{path} is owned by uid {info.st_uid}, not by you (uid {uid}); refusing"
    mode = stat.S_IMODE(info.st_mode)
    if private and mode & 0o077:
        return f"{path} is group/other accessible (mode {mode:04o}); refusing"
    return None
