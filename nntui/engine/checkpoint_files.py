"""Reading a run's checkpoints back, checked: a damaged, empty or foreign file is named and said to
be no nntui checkpoint, instead of surfacing a reader's `EOFError` or `pop from empty list`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nntui.engine import checkpoints

FORMAT = 1
TRAINER_KEYS = ("model", "optimizer", "schedule", "early_stopping", "rng", "progress", "epoch_sums")
PROGRESS_KEYS = ("epoch", "batch", "step", "wall_s")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the text is one line naming the file."""


def load_trainer_state(path: Path, device: Any) -> dict[str, Any]:
    """last.pt as `Trainer.state_dict` wrote it (CheckpointError otherwise)."""
    state = _load(path, device)
    missing = [key for key in TRAINER_KEYS if key not in state]
    progress = state.get("progress")
    if not isinstance(progress, dict) or any(key not in progress for key in PROGRESS_KEYS):
        missing.append("progress")
    if missing or not isinstance(state["model"], dict):
        raise CheckpointError(f"{path} is not an nntui checkpoint (no {', '.join(dict.fromkeys(missing)) or 'model'})")
    return state


def load_checkpoint(path: Path, device: Any) -> dict[str, Any]:
    """last.pt or best.pt: at least the model's weights and where the loop stood (CheckpointError otherwise)."""
    state = _load(path, device)
    progress = state.get("progress")
    if not isinstance(state.get("model"), dict):
        raise CheckpointError(f"{path} is not an nntui checkpoint (no model)")
    if not isinstance(progress, dict) or any(key not in progress for key in ("epoch", "batch", "step")):
        raise CheckpointError(f"{path} is not an nntui checkpoint (no progress)")
    return state


def load_model_weights(path: Path, device: Any) -> dict[str, Any]:
    """The model's state_dict in best.pt (CheckpointError otherwise)."""
    model = _load(path, device).get("model")
    if not isinstance(model, dict):
        raise CheckpointError(f"{path} is not an nntui checkpoint (no model)")
    return model


def _load(path: Path, device: Any) -> dict[str, Any]:
    try:
        if os.path.getsize(path) == 0:
            raise CheckpointError(f"{path} is not an nntui checkpoint (an empty file)")
        state = checkpoints.load(path, device)
    except CheckpointError:
        raise
    except OSError as error:
        raise CheckpointError(f"cannot read {path}: {error.strerror or error}") from None
    except Exception as error:  # noqa: BLE001 -- torch's readers raise many kinds on damaged or foreign bytes
        reason = " ".join(str(error).split())[:160] or type(error).__name__
        raise CheckpointError(f"{path} is not an nntui checkpoint (damaged or foreign: {reason})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an nntui checkpoint (no nntui format {FORMAT} marker)")
    return state
