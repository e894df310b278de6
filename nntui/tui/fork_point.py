"""Where `f` in the monitor forks a run: its last checkpoint and that checkpoint's step. No
textual, no torch here.

On a live run `f` asks for a checkpoint first, so that last.pt holds the current step. The run
goes on, and writes last.pt again at a later epoch end, likely before the fork's process (started
once the user has looked at the form) reads it: so the checkpoint of a run still going is copied
at once into the private directory, in a directory named as the parent with its config.toml,
and the fork starts from the copy (its start record names the parent run). An ended run's
last.pt is used where it is. Copies are removed when the form is left without starting the fork,
and a day later otherwise (the fork's process reads its copy as it starts).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nntui.engine.fork import Fork
from nntui.fs import RunDir
from nntui.records import scan_records
from nntui.tui.private_tmp import private_dir

if TYPE_CHECKING:
    from nntui.config import RunConfig

SNAPSHOT_PREFIX = "fork-"
SNAPSHOT_KEEP_S = 24 * 3600.0


class ForkPointError(Exception):
    """No checkpoint to fork from, or it cannot be copied; the text is one line for the user."""


@dataclass(frozen=True)
class ForkPoint:
    """A run to fork: its name and settings, the checkpoint to start from and its step."""

    parent: str
    config: "RunConfig"
    checkpoint: Path  # the parent's last.pt, or a private copy of it
    step: int | None  # None: no checkpoint record says (an older run)
    epochs_done: int = 0  # the epochs the checkpoint has trained to their end

    def too_few_epochs(self, config: "RunConfig") -> str:
        """'' when `config` trains the fork on; else why not, in one line for the form."""
        done = self.epochs_done
        if config.train.epochs > done:
            return ""
        return f"epochs: the checkpoint ends epoch {done}; set more than {done} to train the fork"

    @property
    def title(self) -> str:
        where = f"at step {self.step:,}" if self.step is not None else "at its last checkpoint"
        return f"fork {self.parent} {where}"

    def argv(self) -> list[str]:
        """`--fork` for the app's child process (launcher.ChildRun's fork_args)."""
        return Fork(self.checkpoint, self.parent, self.config).argv()

    def discard(self) -> None:
        """Remove the private copy (the fork was not started); the parent's own file stays."""
        snapshot = self.checkpoint.parent.parent.parent
        if snapshot.name.startswith(SNAPSHOT_PREFIX) and snapshot.parent == private_dir_or_none():
            shutil.rmtree(snapshot, ignore_errors=True)


def private_dir_or_none() -> Path | None:
    try:
        return private_dir()
    except OSError:
        return None


def fork_point(run_dir: Path, config: "RunConfig", live: bool) -> ForkPoint:
    """The fork point of the run in `run_dir` (with `config`, its settings): its last.pt, copied
    when the run is `live`. ForkPointError when it has none or the copy fails."""
    run_dir = Path(run_dir).absolute()
    last = RunDir(run_dir).last_checkpoint
    try:
        source = open(last, "rb")  # noqa: SIM115 -- opened before the step is read: a later last.pt cannot slip in
    except FileNotFoundError:
        raise ForkPointError(f"run {run_dir.name} has no {RunDir.CHECKPOINTS}/{RunDir.LAST} to fork from") from None
    except OSError as error:
        raise ForkPointError(f"cannot read {last}: {error.strerror or error}") from None
    with source:
        step, done = last_checkpoint_position(run_dir)
        checkpoint = _copied(source, run_dir) if live else last
    return ForkPoint(run_dir.name, config, checkpoint, step, done)


def last_checkpoint_position(run_dir: Path) -> tuple[int | None, int]:
    """The step of the run's last `last.pt`, as its checkpoint records say (None: none says), and
    the last epoch ended by then (by the end of the records when the step is not known); one
    pass over the records."""
    step, epoch_ends = None, []
    for record in scan_records(RunDir(run_dir).metrics, ["checkpoint", "epoch"]):
        if not isinstance(record.get("step"), int):
            continue
        if record["event"] == "checkpoint" and record.get("kind") == "last":
            step = record["step"]
        elif record["event"] == "epoch" and isinstance(record.get("epoch"), int):
            epoch_ends.append((record["step"], record["epoch"]))
    done = max((epoch for at, epoch in epoch_ends if step is None or at <= step), default=0)
    return step, done


def _copied(source: object, run_dir: Path) -> Path:
    """`source` (last.pt, open) and config.toml copied into a new private PREFIX*/NAME/ directory."""
    prune_snapshots()
    try:
        snapshot = Path(tempfile.mkdtemp(prefix=SNAPSHOT_PREFIX, dir=private_dir()))
        copy = snapshot / run_dir.name
        (copy / RunDir.CHECKPOINTS).mkdir(mode=0o700, parents=True)
        shutil.copyfile(RunDir(run_dir).config, copy / RunDir.CONFIG)
        target = copy / RunDir.CHECKPOINTS / RunDir.LAST
        with open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600), "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)  # type: ignore[arg-type]
    except OSError as error:
        raise ForkPointError(f"cannot copy the checkpoint of {run_dir.name}: {error.strerror or error}") from None
    return target


def prune_snapshots(max_age_s: float = SNAPSHOT_KEEP_S) -> None:
    """Remove the private copies older than `max_age_s`."""
    directory = private_dir_or_none()
    if directory is None:
        return
    cutoff = time.time() - max_age_s
    for entry in os.scandir(directory):
        try:
            if entry.name.startswith(SNAPSHOT_PREFIX) and entry.is_dir(follow_symlinks=False) \
                    and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            pass
