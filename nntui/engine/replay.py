"""A steered run, run again: `nntui run --replay RUN`.

Every command a user gave a run is in its `metrics.jsonl` as a `control` record, whose `step` is
the trainer's step when the command applied: the trainer obeys commands right before the batch
that follows that step (or, for a `stop`, during the test pass after the last one). A replay
trains RUN's configuration (same seed) from scratch and hands the trainer the same commands at
the same steps, so on the CPU its epoch records equal RUN's bit for bit.

What is replayed: `lr`, `checkpoint` and `stop`. Pauses change nothing that is trained, and are
left out, but for the `resume` that ended a pause after a divergence (the replay diverges at the
same step, pauses as RUN did, and needs it to go on); the divergence's own weight restore is
the trainer's, not a command. A run continued with `--resume` went back to the checkpoint it
resumed from: what its earlier session did after that step, and the `stop` that ended it, are
not replayed.

Commands reach the trainer through `ReplayControls`, a `Controls` whose `waiting` also becomes
truthy when the next recorded command is due: normal runs pay nothing; a replay pays one small
Python call per step. No torch here.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from nntui.engine.control import Command, CommandError, Controls

REPLAYED = ("lr", "checkpoint", "stop")
SOURCE = "replay"  # the source of a replayed command, in the replay's own control records


@dataclass(frozen=True)
class RecordedCommand:
    """A command of the original run and the step it applied at."""

    step: int
    action: str
    value: float | str | None = None

    def command(self) -> Command:
        return Command(self.action, self.value, SOURCE)


@dataclass(frozen=True)
class ReplayPlan:
    """What a replay of run `run` applies, and how it must meet a divergence."""

    run: str
    commands: tuple[RecordedCommand, ...]
    pauses_on_divergence: bool = False  # RUN restored its weights and paused after a divergence
    forked_from: str | None = None  # RUN started from another run's checkpoint (a replay cannot)


class Replay:
    """A plan at work: the controls that deliver its commands to the trainer it is attached to."""

    def __init__(self, plan: ReplayPlan) -> None:
        self.plan = plan
        self.controls = ReplayControls(plan.commands)

    def attach(self, trainer: Any) -> None:
        """Mark `trainer`'s start record as a replay and deliver the commands at its steps
        (`trainer.controls` must be `self.controls`)."""
        trainer.replayed_from = self.plan.run
        self.controls.follow(trainer)


def plan_from_records(run: str, records: Iterable[dict[str, Any]]) -> ReplayPlan:
    """The commands of a run's records to replay (see the module's docstring)."""
    commands: list[RecordedCommand] = []
    paused_by_divergence = diverged = False
    forked_from = None
    for record in records:
        event = record.get("event")
        if event == "start":
            forked_from = forked_from or _forked_from(record)
            resumed = record.get("resumed_from")
            if _is_step(resumed):
                commands = [c for c in commands if c.step <= resumed and c.action != "stop"]
        elif event == "control" and _is_step(record.get("step")):
            action, source = record.get("action"), record.get("source")
            if action == "pause" and source == "divergence":
                paused_by_divergence = diverged = True
            elif action in REPLAYED or action == "resume" and paused_by_divergence:
                paused_by_divergence = paused_by_divergence and action != "resume"
                commands.extend(_recorded(record))
    return ReplayPlan(run, tuple(commands), diverged, forked_from)


def _recorded(record: dict[str, Any]) -> list[RecordedCommand]:
    """The command of a control record, checked as the trainer would check it ([] for a bad one)."""
    try:
        checked = Command(record["action"], record.get("value"))
    except CommandError:
        return []
    return [RecordedCommand(record["step"], checked.action, checked.value)]


def _is_step(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _forked_from(start: dict[str, Any]) -> str | None:
    source = start.get("forked_from")
    return str(source.get("run")) if isinstance(source, dict) else None


class ReplayControls(Controls):
    """`Controls` that also deliver recorded commands, each once the trainer stands at its step.

    `waiting` is the object itself: truthy when a command was submitted (the channel, a signal:
    a replay can still be steered or stopped by hand) or a recorded one is due. `follow` tells
    it where the trainer stands; until then no recorded command is due.
    """

    def __init__(self, recorded: Sequence[RecordedCommand]) -> None:
        super().__init__()
        self._recorded = deque(sorted(recorded, key=lambda command: command.step))  # stable: same-step order kept
        self._step: Callable[[], int] = lambda: -1
        self.waiting = self  # type: ignore[assignment]

    def follow(self, trainer: Any) -> None:
        """Deliver recorded commands by `trainer.progress.step`."""
        self._step = lambda: trainer.progress.step

    def __bool__(self) -> bool:
        return bool(self._queue) or self._due()

    def _due(self) -> bool:
        return bool(self._recorded) and self._recorded[0].step <= self._step()

    def drain(self) -> list[Command]:
        """The recorded commands due now (in their original order), then those submitted."""
        due = []
        while self._due():
            due.append(self._recorded.popleft().command())
        return due + super().drain()

    @property
    def pending(self) -> tuple[RecordedCommand, ...]:
        """The recorded commands not delivered (the replay ended before their step)."""
        return tuple(self._recorded)
