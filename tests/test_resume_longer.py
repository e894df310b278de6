"""A finished run continued for more epochs (`nntui run --resume RUN --epochs N`, the monitor's
`e`): schedules planned over the run's length run over the new one, as config.toml then says."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from nntui.data import build_data
from nntui.engine.events import EpochEnded, StepLogged
from nntui.engine.trainer import Trainer
from nntui.models import build_model

CPU = torch.device("cpu")


def train(cfg, checkpoint_dir: Path, resume: bool = False) -> list:
    torch.manual_seed(cfg.train.seed)
    data = build_data(cfg, CPU, Path("/nonexistent"))
    model = build_model(cfg.model, data.input_shape, data.num_outputs)
    events: list = []
    trainer = Trainer(cfg, data, model, CPU, events.append, checkpoint_dir=checkpoint_dir)
    if resume:
        trainer.resume_from(checkpoint_dir / "last.pt")
    assert trainer.run().status == "completed"
    return events


@pytest.mark.parametrize("schedule", [["schedule.name='cosine'"], ["schedule.name='onecycle'", "optim.lr=0.01"],
                                      ["schedule.name='cosine'", "schedule.warmup_epochs=1"]])
def test_a_completed_run_continued_follows_the_schedule_of_its_new_length(small_digits, tmp_path, schedule):
    settings = ["train.log_every=1", "early_stopping.enabled=false", *schedule]
    train(small_digits("train.epochs=2", *settings), tmp_path / "short")
    continued = train(small_digits("train.epochs=4", *settings), tmp_path / "short", resume=True)
    planned = train(small_digits("train.epochs=4", *settings), tmp_path / "planned")

    def lrs(events, kind):
        return {e.step: e.lr for e in events if isinstance(e, kind)}

    steps, epochs = lrs(continued, StepLogged), lrs(continued, EpochEnded)
    assert len(epochs) == 2 and min(epochs.values()) > 0  # epoch 3 no longer trains at a cosine's end (0)
    assert steps == pytest.approx({k: v for k, v in lrs(planned, StepLogged).items() if k in steps}, rel=1e-9)
    assert epochs == pytest.approx({k: v for k, v in lrs(planned, EpochEnded).items() if k in epochs}, rel=1e-9)
    assert all(math.isfinite(e.train_loss) for e in continued if isinstance(e, EpochEnded))
