"""Launching the headless runner as a child process of the app. No textual, no torch here.

Training never runs in the TUI process: the app writes the resolved config to a temp file,
starts `python -m nntui run CONFIG --headless ...` and follows the run directory it creates,
or, to resume, starts `python -m nntui run --resume RUN_DIR --headless ...` and follows the
run directory that already exists. The child runs in its own session, so it outlives the app
and its terminal: only an explicit stop (or a signal sent to it) ends it. The temp files live
in the user's private directory (see `private_tmp`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from nntui.paths import default_run_name, unique_run_dir
from nntui.tui.private_tmp import create_private_file, prune_private_dir

if TYPE_CHECKING:
    from nntui.config import RunConfig


def exit_code(returncode: int) -> int:
    """A shell-style exit code: a death by signal N becomes 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def resume_options(*, lr: float | None = None, epochs: int | None = None,
                   device: str | None = None) -> list[str]:
    """The options of `nntui run --resume` that may change on a resumed run, as argv."""
    argv: list[str] = []
    for option, value in (("--lr", lr), ("--epochs", epochs), ("--device", device)):
        if value is not None:
            argv += [option, repr(value) if isinstance(value, float) else str(value)]
    return argv


class ChildRun:
    """One headless run launched by the app, and the files that go with it.

    With `resume_dir` the child continues that run (`config` and `name` are then unused) and
    `resume_args` (see `resume_options`) are passed on to it. A new run gets `fork_args`
    (`Fork.argv`, "--fork PARENT@last"): it then starts from that checkpoint.
    """

    def __init__(self, config: "RunConfig | None", runs_dir: Path, data_dir: Path | None = None,
                 name: str | None = None, *, resume_dir: Path | None = None,
                 resume_args: Sequence[str] = (), fork_args: Sequence[str] = ()) -> None:
        self.config = config
        self.fork_args = list(fork_args)
        self.resume_dir = Path(resume_dir).absolute() if resume_dir else None
        self.resume_args = list(resume_args)
        self.runs_dir = self.resume_dir.parent if self.resume_dir else Path(runs_dir).absolute()
        self.data_dir = Path(data_dir).absolute() if data_dir else None
        if self.resume_dir is not None:
            self.name = self.resume_dir.name
        else:
            if config is None:
                raise ValueError("ChildRun needs a config, or a resume_dir")
            wanted = name or default_run_name(config.name)
            self.name = wanted if name else unique_run_dir(self.runs_dir, wanted).name
        self.run_dir = self.runs_dir / self.name
        self.config_path: Path | None = None  # set by start(): new files in the private dir
        self.stderr_path: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """The child's argv."""
        if self.resume_dir is not None:
            argv = [sys.executable, "-m", "nntui", "run", "--resume", str(self.resume_dir), "--headless",
                    "--runs-dir", str(self.runs_dir), "--diverge", "pause", *self.resume_args]
        else:
            argv = [sys.executable, "-m", "nntui", "run", str(self.config_path), "--headless",
                    "--name", self.name, "--runs-dir", str(self.runs_dir), "--diverge", "pause", *self.fork_args]
        if self.data_dir is not None:
            argv += ["--data-dir", str(self.data_dir)]
        return argv

    def start(self) -> None:
        """Write the config and start the child in its own session (a hangup of the app's
        terminal never reaches it). OSError (a private dir not ours, no such program) when it cannot."""
        prune_private_dir()
        try:
            if self.resume_dir is None:
                assert self.config is not None  # checked in __init__
                fd, self.config_path = create_private_file(f"{self.name}-", ".toml")
                with open(fd, "w", encoding="utf-8") as handle:
                    handle.write(self.config.to_toml())
            fd, self.stderr_path = create_private_file(f"{self.name}-", ".stderr")
            with open(fd, "wb") as stderr:
                self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                                stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
        except OSError:
            self.cleanup()
            raise

    @property
    def pid(self) -> int:
        return self.process.pid if self.process else 0

    def poll(self) -> int | None:
        """The child's exit code once it has exited, else None."""
        if self.process is None:
            return None
        code = self.process.poll()
        return None if code is None else exit_code(code)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the child to exit; its exit code, or None on timeout."""
        if self.process is None:
            return None
        try:
            return exit_code(self.process.wait(timeout))
        except subprocess.TimeoutExpired:
            return None

    def last_error_line(self) -> str:
        """The last non-empty line the child wrote to stderr (its one-line error)."""
        if self.stderr_path is None:
            return ""
        try:
            with open(self.stderr_path, "rb") as handle:
                handle.seek(max(0, os.path.getsize(self.stderr_path) - 8192))
                lines = handle.read().decode("utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return next((line.strip() for line in reversed(lines) if line.strip()), "")

    def signal(self, signum: int = signal.SIGTERM) -> None:
        if self.running:
            try:
                self.process.send_signal(signum)  # type: ignore[union-attr]
            except ProcessLookupError:
                pass

    def release_config(self) -> None:
        """Remove the temp config: the child has read it once its run has started."""
        if self.config_path is not None:
            try:
                self.config_path.unlink()
            except OSError:
                pass
            self.config_path = None

    def cleanup(self) -> None:
        """Remove the temp files once the child is done with them; its stderr is kept only
        after a failure (to look at). A child still running keeps both: it may not have read
        its config yet, and it writes to its stderr after the app has gone."""
        if self.running:
            return
        self.release_config()
        try:
            if self.stderr_path is not None and (self.poll() == 0 or self.stderr_path.stat().st_size == 0):
                self.stderr_path.unlink()
        except OSError:
            pass
