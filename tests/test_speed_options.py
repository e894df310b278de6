"""The speed options of issue 16: optim.impl, train.precision, train.compile, channels-last; and
the choices a device cannot do, refused before anything is written."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import records, run_cli
from test_trainer import CPU, epochs_of, make_trainer, strip_time
from torch import nn

from nntui.config import load_config
from nntui.engine.events import EpochEnded, PhaseChanged, RunEnded, from_record, to_record
from nntui.engine.optim import fused_supported, resolve_impl
from nntui.engine.precision import (
    AutocastForward,
    Unsupported,
    compile_problem,
    prepare_forward,
    refusal,
    step_functions,
    use_channels_last,
)
from nntui.models import build_model


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop"])
@pytest.mark.parametrize("impl", ["auto", "fused", "foreach", "for_loop"])
def test_the_start_record_names_the_implementation_the_optimizer_runs(small_digits, optimizer, impl):
    cfg = small_digits(f"optim.name={optimizer}", f"optim.impl={impl}")
    fused_here = fused_supported(optimizer, CPU)
    if impl == "fused" and not fused_here:
        with pytest.raises(Unsupported, match="no fused rmsprop on the cpu"):
            make_trainer(cfg)
        return
    expected = {"auto": "fused" if fused_here else "foreach"}.get(impl, impl)
    trainer, _ = make_trainer(cfg)
    group = trainer.optimizer.param_groups[0]
    assert bool(group.get("fused")) == (expected == "fused")
    assert bool(group.get("foreach")) == (expected == "foreach")
    assert to_record(trainer._started_event())["optim_impl"] == expected


def test_torch_has_fused_adam_and_sgd_on_the_cpu_and_no_fused_rmsprop():
    """What auto picks rests on this (torch 2.14): if torch changes, the table in the docs must."""
    assert fused_supported("adam", CPU) and fused_supported("adamw", CPU) and fused_supported("sgd", CPU)
    assert not fused_supported("rmsprop", CPU)
    assert resolve_impl(load_config("digits-mlp", ["optim.name=rmsprop"]).optim, CPU) == "foreach"


def test_fused_kernels_give_the_same_metrics_twice(small_digits):
    cfg = small_digits("optim.impl=fused")
    runs = []
    for _ in range(2):
        trainer, events = make_trainer(cfg)
        assert trainer.run().status == "completed"
        runs.append([strip_time(e) for e in epochs_of(events)])
    assert runs[0] == runs[1] and len(runs[0]) == 3


def test_refusals_name_the_choice_the_device_cannot_do(monkeypatch):
    def problem(*sets: str, device: torch.device = CPU) -> str | None:
        return refusal(load_config("digits-mlp", list(sets)), device)

    assert problem() is None and problem("train.precision=bf16") is None
    assert "16-mixed needs a CUDA GPU" in problem("train.precision=16-mixed")
    assert "no fused rmsprop" in problem("optim.name=rmsprop", "optim.impl=fused")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    assert "has no bfloat16" in problem("train.precision=bf16", "optim.impl=foreach", device=torch.device("cuda"))
    monkeypatch.setenv("CXX", "no-such-compiler-here")
    assert "C++ compiler 'no-such-compiler-here'" in problem("train.compile=true")
    assert problem("train.compile=false") is None


def test_float16_on_the_cpu_exits_2_with_one_line_and_no_run_dir(tmp_path):
    result = run_cli("run", "digits-mlp", "--headless", "--epochs", "1", "--runs-dir", str(tmp_path / "runs"),
                     "--set", "train.precision=16-mixed", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "16-mixed needs a CUDA GPU" in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_bf16_on_the_cpu_trains_digits_as_well_as_float32(small_digits):
    accuracies = {}
    for precision in ("32", "bf16"):
        trainer, events = make_trainer(small_digits(f"train.precision={precision}", "train.epochs=4"))
        dtypes: set[torch.dtype] = set()
        first_layer = next(m for m in trainer.model.modules() if isinstance(m, nn.Linear))
        first_layer.register_forward_hook(lambda _m, _i, output, seen=dtypes: seen.add(output.dtype))
        assert trainer.run().status == "completed"
        assert dtypes == {torch.float32 if precision == "32" else torch.bfloat16}
        assert isinstance(trainer.forward, AutocastForward) == (precision == "bf16")
        accuracies[precision] = epochs_of(events)[-1].val_acc
    assert accuracies["32"] > 0.9 and accuracies["bf16"] > 0.9
    assert abs(accuracies["32"] - accuracies["bf16"]) < 0.05


@pytest.mark.parametrize("fused", [False, True])  # a fused optimizer skips an overflowing step itself
def test_the_gradient_scaler_unscales_skips_overflows_and_resumes_exactly(fused):
    """The float16 path's scaler, on the CPU (torch.amp.GradScaler runs there too; no CUDA here):
    the gradients the step sees are the true ones, an overflowing step is skipped and halves the
    scale, and the scale survives a checkpoint."""
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, fused=fused)
    steps = step_functions(optimizer, "16-mixed", CPU)
    assert steps.scaler is not None and step_functions(optimizer, "bf16", CPU).scaler is None
    inputs = torch.randn(8, 3)
    expected = torch.autograd.grad(model(inputs).pow(2).mean(), model.weight)[0]
    steps.backward(model(inputs).pow(2).mean())
    torch.testing.assert_close(model.weight.grad, expected)
    before, scale = model.weight.detach().clone(), steps.scaler.get_scale()
    steps.step()
    assert not torch.equal(model.weight, before)
    optimizer.zero_grad()
    steps.backward(model(inputs).sum() * float("inf"))
    before = model.weight.detach().clone()
    steps.step()
    assert torch.equal(model.weight, before) and steps.scaler.get_scale() == scale / 2
    again = step_functions(optimizer, "16-mixed", CPU)
    again.load_state_dict(json.loads(json.dumps({"scaler": steps.state_dict()["scaler"]})))
    assert again.scaler.get_scale() == scale / 2


def test_a_trainer_checkpoint_keeps_the_scaler_state(small_digits, tmp_path):
    trainer, _ = make_trainer(small_digits("train.epochs=1"), tmp_path)
    trainer.steps = step_functions(trainer.optimizer, "16-mixed", CPU)  # float16's steps, on the CPU
    trainer.steps.scaler.set_growth_interval(1)  # the scale doubles each step: it ends far from the default
    assert trainer.run().status == "completed"
    assert trainer.steps.scaler.get_scale() > 2 * 65536.0
    resumed, _ = make_trainer(small_digits("train.epochs=2"), tmp_path)
    resumed.steps = step_functions(resumed.optimizer, "16-mixed", CPU)
    resumed.resume_from(tmp_path / "checkpoints" / "last.pt")
    assert resumed.steps.scaler.get_scale() == trainer.steps.scaler.get_scale()


def test_channels_last_for_the_cnns_on_cuda_only(small_digits):
    cuda = torch.device("cuda")
    assert use_channels_last("cnn", cuda) and use_channels_last("vgg", cuda) and use_channels_last("resnet18", cuda)
    assert not use_channels_last("mlp", cuda) and not use_channels_last("cnn", CPU)
    cfg = small_digits("model.kind=cnn", "model.hidden=[4]")
    model = build_model(cfg.model, (3, 8, 8), 10)  # 3 channels: a 1-channel kernel is both formats at once
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert prepare_forward(model, cfg, CPU) == (None, False)
    assert not conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert prepare_forward(model, cfg, cuda) == (None, True)  # the decision and the conversion, run on the CPU
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_phase_records_read_back_and_show_as_a_status():
    from nntui.tui.formatting import fmt_duration
    from nntui.tui.state import MonitorState

    compiling, compiled = PhaseChanged("compiling", 0), PhaseChanged("training", 0, compile_s=12.5)
    assert "compile_s" not in to_record(compiling) and to_record(compiled)["compile_s"] == 12.5
    assert from_record(json.loads(json.dumps(to_record(compiled)))) == compiled
    state = MonitorState()
    state.apply(compiling)
    assert state.status == "compiling" and state.live
    state.apply(compiled)
    assert state.status == "running" and state.log[-1].text == f"compiled in {fmt_duration(12.5)}"


@pytest.mark.skipif(compile_problem(CPU) is not None, reason="no C++ compiler here: the refusal is tested instead")
def test_a_compiled_run_trains_digits_and_records_its_compile_time(tmp_path):
    result = run_cli("run", "digits-mlp", "--headless", "--epochs", "3", "--runs-dir", str(tmp_path / "runs"),
                     "--name", "compiled", "--set", "train.compile=true", "--set", "train.log_interval_s=0",
                     cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    recs = records(tmp_path / "runs" / "compiled")
    phases = [r for r in recs if r["event"] == "phase"]
    assert [p["phase"] for p in phases] == ["compiling", "training"] and phases[1]["compile_s"] > 0
    assert recs.index(phases[1]) < next(i for i, r in enumerate(recs) if r["event"] == "step")
    assert [r for r in recs if r["event"] == "epoch"][-1]["val_acc"] > 0.9
    end = [r for r in recs if r["event"] == "end"][0]
    assert end["status"] == "completed" and not isinstance(from_record(end), EpochEnded)
    assert isinstance(from_record(end), RunEnded)
