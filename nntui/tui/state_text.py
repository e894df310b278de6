"""The monitor's lines of text made from single events: the log lines of a start, an epoch and
a control, the results line of an ended run, the early-stopping pane. Pure Python (no textual)."""

from __future__ import annotations

from nntui.engine.events import ControlApplied, EarlyStopStatus, EpochEnded, RunEnded, RunStarted
from nntui.tui.formatting import fmt_duration, fmt_lr, fmt_percent, fmt_value

END_STATUS = {
    "completed": "finished", "early_stopped": "early-stopped", "stopped": "stopped",
    "diverged": "diverged", "failed": "failed",
}




def sizes_text(event: RunStarted) -> str:
    """`train 1,078 / val 359 / test 360`."""
    return f"train {event.train_size:,} / val {event.val_size:,} / test {event.test_size:,}"


def started_line(event: RunStarted) -> str:
    """`started digits-mlp on cpu · 11,466 params · train 1,078 / val 359 / test 360 · adam lr 1.00e-03`."""
    sizes = f" · {sizes_text(event)}" if event.sizes_known else ""
    fork = f" · forked from {event.forked_from.run} at step {event.forked_from.step:,}" if event.forked_from else ""
    replay = f" · replaying the commands of {event.replayed_from}" if event.replayed_from else ""
    return (f"started {event.preset} on {event.device} · {event.params:,} params{sizes}"
            f" · {event.optimizer or '?'} lr {fmt_lr(event.lr)}{fork}{replay}")


def epoch_line(event: EpochEnded, total_epochs: int) -> str:
    """`epoch 21/40  loss 0.02295/0.09262  acc 99.6%/97.9%  lr 2.50e-04  wait 6/6` (train/val)."""
    parts = [f"epoch {event.epoch}/{total_epochs}" if total_epochs else f"epoch {event.epoch}",
             f"loss {fmt_value(event.train_loss)}/{fmt_value(event.val_loss)}"]
    if event.val_acc is not None:
        parts.append(f"acc {fmt_percent(event.train_acc, 1)}/{fmt_percent(event.val_acc, 1)}")
    if event.val_r2 is not None:
        parts.append(f"MAE {fmt_value(event.val_mae)} R² {fmt_value(event.val_r2)}")
    parts.append(f"lr {fmt_lr(event.lr)}")
    stop = event.early_stop
    if stop is not None:
        parts.append("★ best" if stop.best_epoch == event.epoch else f"wait {stop.wait}/{stop.patience}")
    return "  ".join(parts)


def describe_control(event: ControlApplied) -> str:
    """The trainer's message with who asked (`paused at step 7 (tui)`), else `step 7: lr → 3.00e-04 (ctl)`."""
    if event.message:
        return f"{event.message} ({event.source})"
    if event.action == "lr":
        text = f"lr → {fmt_lr(event.value if isinstance(event.value, (int, float)) else None)}"
    else:
        text = {"pause": "paused", "resume": "resumed", "stop": "stop requested",
                "checkpoint": "checkpoint"}.get(event.action, event.action)
    return f"step {event.step}: {text} ({event.source})"


def results_line(end: RunEnded) -> str:
    """The test results line of an ended run."""
    parts = [f"{END_STATUS.get(end.status, end.status)} at epoch {end.epoch}",
             f"test loss {fmt_value(end.test_loss)}"]
    if end.test_acc is not None:
        parts.append(f"test acc {fmt_percent(end.test_acc)}")
    if end.test_r2 is not None or end.test_mae is not None:
        parts.append(f"test MAE {fmt_value(end.test_mae)} R² {fmt_value(end.test_r2)}")
    if end.best_epoch is not None:
        parts.append(f"best epoch {end.best_epoch} ({fmt_value(end.best)})")
    parts.append(f"wall {fmt_duration(end.wall_s)}")
    return " · ".join(parts)


def early_stop_lines(stop: EarlyStopStatus | None, started: bool) -> list[str]:
    """The early-stopping pane: monitor and best, then wait/patience and restore."""
    if stop is None:
        return ["early stopping off" if started else "waiting for the run to start…"]
    best = "none yet" if stop.best is None else f"{fmt_value(stop.best)} @ epoch {stop.best_epoch}"
    restore = "restores best" if stop.restore_best else "keeps last"
    return [f"{stop.mode} {stop.monitor}: {best}", f"wait {stop.wait}/{stop.patience}, {restore}"]
