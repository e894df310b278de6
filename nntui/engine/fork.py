"""A new run from another run's checkpoint: `nntui run --fork RUN[@last|@best]`.

What the fork takes from the checkpoint (last.pt holds the trainer's whole state, best.pt only
the model's weights and where the loop stood):

- the model's weights and the step and epoch counters (a checkpoint taken mid-epoch goes on
  with that epoch, its running sums included);
- the optimizer's state (Adam's moments, momentum buffers) when the optimizer is the same by
  name; another optimizer starts fresh. Hyperparameters the fork changes take their new values;
- the LR schedule's state when, besides, the `schedule` section is unchanged; otherwise the
  fork's schedule starts afresh at the fork step, from the fork's `optim.lr`;
- the random state when the seed is unchanged, so that a fork with nothing changed trains
  exactly as the parent would have gone on.

A fork's own learning rate (`--lr`, or `optim.lr` changed) is set over a kept schedule's.
Early stopping starts afresh: the fork's best epoch is one of its own. Wall time counts from 0.
No torch at import time: the CLI builds a `Fork` before deciding whether to train.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nntui.engine.failures import one_line

if TYPE_CHECKING:
    from nntui.config import OptimConfig, RunConfig

# OptimConfig fields that are also keys of a torch.optim parameter group, under the same name
HYPERPARAMETERS = ("momentum", "betas", "eps", "weight_decay")


@dataclass(frozen=True)
class Fork:
    """Where a fork starts: the parent run's checkpoint file, the parent's name and configuration."""

    checkpoint: Path
    parent: str
    parent_config: "RunConfig"
    lr: float | None = None  # the fork's own learning rate (`--lr`), set over the checkpoint's

    def argv(self) -> list[str]:
        """`--fork` (and `--lr`) for a child process: the parent's directory and which checkpoint."""
        lr = ["--lr", repr(self.lr)] if self.lr is not None else []
        return ["--fork", f"{self.checkpoint.parent.parent}@{self.checkpoint.stem}", *lr]


def start_fork(trainer: Any, fork: Fork) -> str | None:
    """Put `trainer` (built for the fork's configuration, not yet run) where `fork.checkpoint` stood,
    as the module's docstring says; None, or a one-line problem (nothing has been written)."""
    from nntui.engine.checkpoint_files import CheckpointError

    try:
        _load(trainer, fork)
    except CheckpointError as error:
        return f"cannot fork: {error}"
    except Exception as error:  # noqa: BLE001 -- whatever else a damaged or foreign file causes, in one line
        return f"cannot fork from {fork.checkpoint}: {one_line(error)[:300]}"
    trained = trainer.progress.epoch - 1
    if trained >= trainer.cfg.train.epochs:
        return (f"the checkpoint of {fork.parent} ends epoch {trained}: pass --epochs N "
                f"(more than {trained}) to train the fork")
    return None


def _load(trainer: Any, fork: Fork) -> None:
    from nntui.engine.checkpoint_files import CheckpointError, load_checkpoint
    from nntui.engine.events import ForkSource

    parent, cfg = fork.parent_config, trainer.cfg
    state = load_checkpoint(fork.checkpoint, trainer.device)
    keep_optimizer = "optimizer" in state and parent.optim.name == cfg.optim.name
    keep_schedule = keep_optimizer and "schedule" in state and parent.schedule == cfg.schedule
    fresh = trainer.state_dict()
    progress = state["progress"]
    merged = {**fresh, "model": state["model"],
              "progress": {"epoch": progress["epoch"], "batch": progress["batch"], "step": progress["step"],
                           "wall_s": 0.0, "paused_s": 0.0},
              "epoch_sums": state.get("epoch_sums", fresh["epoch_sums"])}
    if keep_optimizer:
        merged["optimizer"] = _optimizer_state(state["optimizer"], fresh["optimizer"], parent.optim, cfg.optim,
                                               keep_schedule)
    if keep_schedule:
        merged["schedule"] = state["schedule"]
    if "rng" in state and parent.train.seed == cfg.train.seed:
        merged["rng"] = state["rng"]
    try:
        trainer.load_state_dict(merged)
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as error:
        raise CheckpointError(f"{fork.checkpoint} does not fit this run: {one_line(error)[:200]}") from None
    if keep_schedule and fork.lr is not None:  # else the optimizer's groups have the fork's own LR already
        trainer.schedule.set_lr(fork.lr)
    trainer.forked_from = ForkSource(fork.parent, trainer.progress.step)


def _optimizer_state(parent: dict[str, Any], fresh: dict[str, Any], parent_optim: "OptimConfig",
                     optim: "OptimConfig", keep_schedule: bool) -> dict[str, Any]:
    """The parent's per-parameter state, with parameter groups that fit the fork: the parent's
    (their LR as its schedule left it) with the hyperparameters the fork changed, or, for a new
    schedule, the fork's own (the LR and the schedule's keys then start from the fork's config)."""
    if not keep_schedule:
        return {"state": parent["state"], "param_groups": fresh["param_groups"]}
    changed = [key for key in HYPERPARAMETERS if getattr(parent_optim, key) != getattr(optim, key)]
    groups = []
    for group, fresh_group in zip(parent["param_groups"], fresh["param_groups"]):
        groups.append({**group, **{key: fresh_group[key] for key in changed if key in fresh_group}})
    return {"state": parent["state"], "param_groups": groups}
