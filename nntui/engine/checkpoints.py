"""Checkpoints: written atomically, read back with `torch.load(weights_only=True)`."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from nntui import fs


def save_atomic(state: dict[str, Any], path: Path) -> None:
    """Write `state` to `path` so that readers only ever see a whole old file or a whole new one.

    The state is serialized in memory first, so a full disk or an I/O error raises a one-line
    `fs.StorageError` naming the file ("no space left on device: runs/x/checkpoints/last.pt"),
    with the old file untouched and no temp file left. The file is written 0600, never through a
    link, in the directory the run holds open (see `fs.own_dir`).
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path = Path(path)
    with fs.own_dir(path.parent, "checkpoint directory") as directory:
        directory.write_atomic(path.name, buffer.getbuffer())


def load(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load a checkpoint with `weights_only=True`: no pickled code is ever run."""
    return torch.load(path, map_location=device, weights_only=True)


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
