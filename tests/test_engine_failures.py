"""Failures that can only be found late still read as one line: out of memory (what was being
allocated, what to try) and a checkpoint on `--resume` that is not an nntui checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import records

from nntui.engine.checkpoint_files import CheckpointError
from nntui.engine.failures import allocation_size, is_out_of_memory, one_line

CPU = torch.device("cpu")


def real_cpu_allocation_error() -> RuntimeError:
    try:
        torch.empty(2**48, dtype=torch.uint8)  # 256 TiB: refused at once, nothing is touched
    except RuntimeError as error:
        return error
    pytest.skip("this machine allocated 256 TiB")


# --------------------------------------------------------------------------- out of memory


def test_out_of_memory_messages_say_the_size_and_what_to_try(small_digits):
    cfg = small_digits()
    cpu = one_line(real_cpu_allocation_error(), cfg, "training")
    assert cpu.startswith("out of memory while training: tried to allocate 256.00 TiB; try a smaller")
    assert f"data.batch_size (now {cfg.data.batch_size})" in cpu and f"model.hidden (now {cfg.model.hidden})" in cpu
    cuda = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB. GPU 0 has a total capacity "
                                  "of 7.79 GiB of which 1.2 GiB is free.")
    assert one_line(cuda).startswith("out of GPU memory: tried to allocate 8.00 GiB; try a smaller data.batch_size")
    windows = RuntimeError("[enforce fail at alloc_cpu.cpp:114] data. DefaultCPUAllocator: not enough memory: "
                           "you tried to allocate 1073741824 bytes.")
    assert "tried to allocate 1.00 GiB" in one_line(windows)
    assert one_line(MemoryError()).startswith("out of memory: MemoryError; try")
    assert allocation_size("Tried to allocate 512.00 MiB on private pool") == "512.00 MiB"
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert one_line(ValueError("bad\n  value")) == "ValueError: bad value"


class AllocatesTooMuch(torch.nn.Module):
    """Wraps a model; its forward pass asks the real allocator for 256 TiB."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        torch.empty(2**48, dtype=torch.uint8)
        return self.inner(inputs)


def test_out_of_memory_while_training_ends_the_run_failed_with_the_one_line(small_digits, tmp_path):
    from test_trainer import make_trainer

    trainer, events = make_trainer(small_digits(), tmp_path)
    trainer.model = AllocatesTooMuch(trainer.model)
    end = trainer.run()
    assert end.status == "failed" and end.error == end.reason
    assert end.error.startswith("out of memory while training: tried to allocate 256.00 TiB; try a smaller")
    assert "DefaultCPUAllocator" in trainer.error_traceback  # the whole story, for error.log


OOM_SCRIPT = """
import sys, torch
import nntui.models
WHEN = sys.argv[2]
real_build = nntui.models.build_model
class AllocatesTooMuch(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner
    def forward(self, inputs):
        torch.empty(2**48, dtype=torch.uint8)
        return self.inner(inputs)
def build_model(*args, **kwargs):
    if WHEN == "build":
        torch.empty(2**48, dtype=torch.uint8)
    return AllocatesTooMuch(real_build(*args, **kwargs))
nntui.models.build_model = build_model
from nntui.cli import main
sys.argv = ["nntui", "run", "digits-mlp", "--headless", "--epochs", "1", "--runs-dir", sys.argv[1], "--name", "r"]
main()
"""


@pytest.mark.parametrize("when", ["train", "build"])
def test_out_of_memory_in_a_real_run_is_one_line_and_exit_1(tmp_path, when):
    """The real CPU allocator's error, raised in a real `nntui run --headless` process."""
    runs = tmp_path / "runs"
    env = {**os.environ, "NNTUI_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-c", OOM_SCRIPT, str(runs), when], capture_output=True, text=True,
                          timeout=240, env=env, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    if when == "build":
        assert done.stderr.strip().splitlines()[-1] == (
            "nntui: error: out of memory while loading the data and the model: tried to allocate 256.00 TiB; "
            "try a smaller data.batch_size (now 32) or a smaller model.hidden (now [128, 64])")
        assert not runs.exists()
        return
    assert "error: out of memory while training: tried to allocate 256.00 TiB" in done.stdout
    end = records(runs / "r")[-1]
    assert end["status"] == "failed" and "data.batch_size" in end["error"]
    assert "Traceback" in (runs / "r" / "error.log").read_text()


# --------------------------------------------------------------------------- checkpoints that are not ours


@pytest.fixture
def saved_run(small_digits, tmp_path):
    """A trainer with a real last.pt, and a fresh trainer of the same config to resume into it."""
    from test_trainer import make_trainer

    cfg = small_digits("train.epochs=1")
    trainer, _ = make_trainer(cfg, tmp_path)
    trainer.run()
    return lambda: make_trainer(cfg, tmp_path)[0], tmp_path / "checkpoints" / "last.pt"


def damage(path: Path, how: str) -> None:
    if how == "empty":
        path.write_bytes(b"")
    elif how == "random bytes":
        path.write_bytes(os.urandom(4096))
    elif how == "foreign dict":
        torch.save({"state_dict": {"weight": torch.zeros(2)}, "epoch": 3}, path)
    elif how == "a bare tensor":
        torch.save(torch.zeros(3), path)
    elif how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("how", ["empty", "random bytes", "foreign dict", "a bare tensor", "truncated"])
def test_a_checkpoint_that_is_not_ours_is_named_and_refused(saved_run, how):
    new_trainer, last = saved_run
    damage(last, how)
    with pytest.raises(CheckpointError) as caught:
        new_trainer().resume_from(last)
    message = str(caught.value)
    assert message.startswith(f"{last} is not an nntui checkpoint (") and "\n" not in message


def test_a_checkpoint_of_another_model_does_not_fit(saved_run, small_digits, tmp_path):
    from test_trainer import make_trainer

    _, last = saved_run
    other, _ = make_trainer(small_digits("train.epochs=1", "model.hidden=[7]"), tmp_path)
    with pytest.raises(CheckpointError, match=r"last\.pt does not fit this run: RuntimeError: Error\(s\) in loading"):
        other.resume_from(last)


def test_resume_from_an_empty_checkpoint_is_one_line(tmp_path):
    from conftest import run_cli

    first = run_cli("run", "digits-mlp", "--headless", "--epochs", "1", "--runs-dir", "runs", "--name", "r",
                    "--set", "train.log_interval_s=0", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    last = tmp_path / "runs" / "r" / "checkpoints" / "last.pt"
    last.write_bytes(b"")
    resumed = run_cli("run", "--resume", "r", "--epochs", "2", "--headless", "--runs-dir", "runs", cwd=tmp_path)
    assert resumed.returncode == 1
    assert resumed.stderr.strip().splitlines()[-1:] == [
        f"nntui: error: cannot resume: {Path('runs/r/checkpoints/last.pt')} is not an nntui checkpoint (an empty file)"]
