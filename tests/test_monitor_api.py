"""`nntui.Monitor` on a loop of the user's own: the records the readers expect, the end of a failed
block, commands at step boundaries, no host sync between log intervals."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from conftest import records_of

import nntui
from nntui.config import tomllib
from nntui.engine.events import from_record
from nntui.runs import read_records, run_info
from nntui.tui.state import MonitorState

STEPS_PER_EPOCH = 12


def small_loop(groups: bool = False):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    if groups:
        params = [{"params": model[0].parameters(), "lr": 0.01}, {"params": model[2].parameters(), "lr": 0.001}]
        optimizer = torch.optim.SGD(params, lr=0.01)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    inputs, targets = torch.randn(48, 8), torch.randint(0, 3, (48,))

    def train_step() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(inputs), targets)
        loss.backward()
        optimizer.step()
        return loss

    return model, optimizer, train_step


def test_import_nntui_does_not_import_torch():
    code = "import sys, nntui; assert 'torch' not in sys.modules; print(nntui.Monitor.__name__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Monitor"


def test_a_loop_writes_the_records_the_readers_expect(tmp_path):
    model, optimizer, train_step = small_loop()
    with nntui.Monitor(model, optimizer, name="mine", config={"lr": 1e-3, "layers": [16]}, epochs=3,
                       runs_dir=tmp_path, log_every=5, log_interval_s=0, steps_per_epoch=STEPS_PER_EPOCH,
                       early_stopping={"monitor": "val_loss", "patience": 4}) as monitor:
        for epoch in range(3):
            for _ in range(STEPS_PER_EPOCH):
                monitor.step(loss=train_step())
            monitor.epoch(val_loss=torch.tensor(1.0 - epoch / 10), val_acc=0.5 + epoch / 10, val_f1=0.25)
    run_dir = tmp_path / "mine"
    assert monitor.run_dir == run_dir
    records = read_records(run_dir)
    events = [from_record(record) for record in records]
    assert None not in events, "a record the readers cannot use"
    kinds = [record["event"] for record in records]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("epoch") == 3
    assert records[0]["own_loop"] is True  # the monitor offers no n, e or f for it
    assert [r["step"] for r in records if r["event"] == "step"] == [5, 10, 12, 15, 20, 24, 25, 30, 35, 36]  # and at epoch ends
    epochs = records_of(run_dir, "epoch")
    assert [e["val_f1"] for e in epochs] == [0.25] * 3  # a metric with no field of its own is kept
    assert epochs[-1]["early_stop"]["best"] == pytest.approx(0.8) and epochs[-1]["early_stop"]["best_epoch"] == 3
    norms = records_of(run_dir, "grad_norms")[0]["norms"]
    assert list(norms) == [name for name, _ in model.named_parameters()]

    info = run_info(run_dir)
    assert (info.status, info.epochs, info.monitor) == ("completed", 3, "val_loss")
    assert info.best == pytest.approx(0.8)
    state = MonitorState()
    state.apply_all(events)
    assert (state.status, state.step, state.epoch, state.total_steps) == ("finished", 36, 3, 36)
    assert state.started.optimizer == "Adam" and state.ended.best_epoch == 3
    config = tomllib.loads((run_dir / "config.toml").read_text())
    assert config["task"] == "classification" and config["train"]["epochs"] == 3
    assert config["script"]["config"] == {"lr": 1e-3, "layers": [16]}


def test_split_sizes_given_are_recorded_and_shown_and_left_out_when_not(tmp_path):
    from nntui.console import PlainConsole
    from nntui.tui.state_text import started_line

    def start_of(name: str, **sizes):
        model, optimizer, train_step = small_loop()
        with nntui.Monitor(model, optimizer, name=name, runs_dir=tmp_path, batch_size=16, **sizes) as monitor:
            monitor.step(loss=train_step())
        return from_record(records_of(tmp_path / name, "start")[0])

    given = start_of("sized", train_size=48, val_size=12)
    assert (given.train_size, given.val_size, given.test_size, given.steps_per_epoch) == (48, 12, 0, 3)
    assert " · train 48 / val 12 / test 0 · " in started_line(given)
    unknown = start_of("unsized")
    assert (unknown.train_size, unknown.steps_per_epoch) == (0, 0)
    assert "train 0" not in started_line(unknown) and " params · adam" in started_line(unknown).lower()
    lines = []
    console = PlainConsole(type("Out", (), {"write": lines.append, "flush": lambda self: None})())
    console(unknown)
    console(given)
    assert "train/val/test" not in lines[0] and "48/12/0 train/val/test, " in lines[1]


def test_the_train_loss_defaults_to_the_mean_of_the_steps_losses(tmp_path):
    model, optimizer, _ = small_loop()
    with nntui.Monitor(model, optimizer, name="means", runs_dir=tmp_path, log_every=2, log_interval_s=0) as monitor:
        for loss in (1.0, 2.0, torch.tensor(3.0), torch.tensor([4.0, 6.0])):
            monitor.step(loss=loss)
        monitor.epoch()
        monitor.step(loss=torch.tensor(7.0))
        monitor.epoch(train_loss=0.5)
    epochs = records_of(tmp_path / "means", "epoch")
    assert [e["train_loss"] for e in epochs] == [pytest.approx(2.75), 0.5]
    assert [s["loss"] for s in records_of(tmp_path / "means", "step")] == [1.5, 4.0, 7.0]


def test_an_exception_ends_the_run_failed_and_goes_on_up(tmp_path):
    model, optimizer, train_step = small_loop()
    with pytest.raises(RuntimeError, match="boom"):
        with nntui.Monitor(model, optimizer, name="broken", runs_dir=tmp_path) as monitor:
            monitor.step(loss=train_step())
            raise RuntimeError("boom\nsecond line")
    end = records_of(tmp_path / "broken", "end")[-1]
    assert (end["status"], end["error"], end["step"]) == ("failed", "RuntimeError: boom second line", 1)
    assert run_info(tmp_path / "broken").status == "failed"


def test_commands_apply_at_the_step_boundary(tmp_path):
    model, optimizer, train_step = small_loop(groups=True)
    with nntui.Monitor(model, optimizer, name="steered", runs_dir=tmp_path, state=lambda: {"seen": 3}) as monitor:
        monitor.step(loss=train_step())
        monitor.controls.request("lr", 0.1, "ctl")
        monitor.controls.request("checkpoint", source="ctl")
        assert [group["lr"] for group in optimizer.param_groups] == [0.01, 0.001]  # not before the boundary
        monitor.step(loss=train_step())
        assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([0.1, 0.01])
        monitor.controls.request("stop", source="ctl")
        assert not monitor.should_stop
        monitor.step(loss=train_step())
        assert monitor.should_stop
    controls = records_of(tmp_path / "steered", "control")
    assert [(c["action"], c["step"], c["source"]) for c in controls] == [("lr", 2, "ctl"), ("checkpoint", 2, "ctl"),
                                                                          ("stop", 3, "ctl")]
    assert records_of(tmp_path / "steered", "end")[-1]["status"] == "stopped"
    saved = torch.load(tmp_path / "steered" / "checkpoints" / "last.pt", weights_only=True)
    assert saved["progress"]["step"] == 3 and saved["state"] == {"seen": 3}
    assert [g["lr"] for g in saved["optimizer"]["param_groups"]] == pytest.approx([0.1, 0.01])
    assert saved["model"]["0.weight"].shape == (16, 8)


def test_early_stopping_sets_should_stop(tmp_path):
    model, optimizer, train_step = small_loop()
    with nntui.Monitor(model, optimizer, name="early", runs_dir=tmp_path,
                       early_stopping={"monitor": "val_loss", "patience": 1}) as monitor:
        for val_loss in (1.0, 2.0, 3.0):
            monitor.step(loss=train_step())
            monitor.epoch(val_loss=val_loss)
            if monitor.should_stop:
                break
    end = records_of(tmp_path / "early", "end")[-1]
    assert (end["status"], end["epoch"], end["best_epoch"], end["best"]) == ("early_stopped", 2, 1, 1.0)
    assert (tmp_path / "early" / "checkpoints" / "last.pt").is_file()


SYNCS = ("item", "tolist", "__float__", "__bool__", "__int__", "cpu", "numpy")


def test_no_host_sync_between_log_intervals(tmp_path, monkeypatch):
    model, optimizer, train_step = small_loop()
    calls: list[str] = []
    counting = [False]
    for name in SYNCS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            if counting[0]:
                calls.append(_name)
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, name, counted)
    with nntui.Monitor(model, optimizer, name="syncs", runs_dir=tmp_path, log_every=25, log_interval_s=0,
                       early_stopping={"monitor": "val_loss"}) as monitor:
        per_step = []
        for _ in range(50):
            loss = train_step()
            counting[0] = True
            monitor.step(loss=loss)
            counting[0] = False
            per_step.append(len(calls))
            calls.clear()
    assert [count for step, count in enumerate(per_step, 1) if step % 25] == [0] * 48
    assert per_step[24] >= 1 and per_step[49] >= 1  # the log steps read the values: the counting works


STEERED_LOOP = """
import json, sys, time
import torch
import nntui

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
optimizer = torch.optim.SGD([{"params": model[0].parameters(), "lr": 0.01},
                             {"params": model[2].parameters(), "lr": 0.001}], lr=0.01)
inputs, targets = torch.randn(64, 8), torch.randint(0, 2, (64,))
with nntui.Monitor(model, optimizer, name="steered", epochs=100000, runs_dir=sys.argv[1], log_every=1,
                   log_interval_s=0, state=lambda: {"note": "mine"}) as monitor:
    while not monitor.should_stop:
        for _ in range(20):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(inputs), targets)
            loss.backward()
            optimizer.step()
            monitor.step(loss=loss)
            time.sleep(0.005)
            if monitor.should_stop:
                break
        monitor.epoch(val_loss=loss)
with open(sys.argv[2], "w") as out:
    json.dump({"lrs": [group["lr"] for group in optimizer.param_groups], "steps": monitor.global_step}, out)
"""


def start_steered_loop(tmp_path):
    from conftest import start_cli, wait_until

    from nntui.runs import is_live

    script = tmp_path / "loop.py"
    script.write_text(STEERED_LOOP)
    proc = start_cli(str(script), str(tmp_path / "runs"), str(tmp_path / "result.json"), cwd=tmp_path,
                     program=[sys.executable])
    run_dir = tmp_path / "runs" / "steered"
    wait_until(lambda: is_live(run_dir) and len(records_of(run_dir, "step")) >= 5, 90, what="the loop's steps")
    return proc, run_dir


@pytest.mark.slow
def test_a_plain_loop_in_a_subprocess_is_steered_with_ctl(tmp_path):
    import json
    import time

    from conftest import count_records, finish_cli, run_cli, wait_until

    proc, run_dir = start_steered_loop(tmp_path)
    try:
        def ctl(*args: str) -> str:
            done = run_cli("ctl", str(run_dir), *args, cwd=tmp_path)
            assert done.returncode == 0, done.stderr
            return done.stdout

        assert "paused at step" in ctl("pause")
        paused_at = count_records(run_dir, "step")
        time.sleep(1.0)
        assert count_records(run_dir, "step") == paused_at, "steps went on while paused"
        assert "resumed" in ctl("resume")
        wait_until(lambda: count_records(run_dir, "step") > paused_at + 5, 30, what="steps after resuming")
        assert "learning rate 0.01 -> 0.2" in ctl("lr", "0.2")
        assert "stopping" in ctl("stop")
        result = finish_cli(proc, timeout=60)
        assert result.returncode == 0, result.stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    lrs = json.loads((tmp_path / "result.json").read_text())["lrs"]
    assert lrs == pytest.approx([0.2, 0.02]), "the groups' ratio is kept"
    controls = records_of(run_dir, "control")
    assert [(c["action"], c["source"]) for c in controls] == [("pause", "ctl"), ("resume", "ctl"), ("lr", "ctl"),
                                                              ("stop", "ctl")]
    later = [s for s in records_of(run_dir, "step") if s["step"] > controls[2]["step"]]
    assert later and all(s["lr"] == pytest.approx(0.2) for s in later)
    assert records_of(run_dir, "end")[-1]["status"] == "stopped"
    saved = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert saved["state"] == {"note": "mine"} and saved["progress"]["step"] == controls[-1]["step"]
    assert [g["lr"] for g in saved["optimizer"]["param_groups"]] == pytest.approx([0.2, 0.02])


@pytest.mark.slow
async def test_attach_follows_and_steers_a_monitor_run(tmp_path):
    from conftest import finish_cli
    from conftest import pilot_wait_until as pilot_wait

    from nntui.channel import send_command
    from nntui.tui.app import create_app
    from nntui.tui.monitor import MonitorScreen

    proc, run_dir = start_steered_loop(tmp_path)
    try:
        app = create_app(mode="attach", runs_dir=run_dir.parent, run_dir=run_dir)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = app.screen
            assert isinstance(screen, MonitorScreen) and screen.mode == "attach"
            await pilot_wait(pilot, lambda: screen.state.status == "running" and screen.state.step > 5, 30,
                             what="the live run")
            assert screen.state.started.layers == ("0.weight", "0.bias", "2.weight", "2.bias")
            await pilot.press("space")
            await pilot_wait(pilot, lambda: screen.state.status == "paused", 30, what="paused from the monitor")
            assert records_of(run_dir, "control")[-1]["source"] == "tui"
            await pilot.press("space")
            await pilot_wait(pilot, lambda: screen.state.status == "running", 30, what="resumed")
            assert send_command(run_dir, "stop", source="ctl", timeout=30).ok
            await pilot_wait(pilot, lambda: screen.state.ended is not None, 30, what="the end record")
            assert screen.state.status == "stopped"
        assert finish_cli(proc, timeout=60).returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_grad_norm_records_carry_the_logged_steps_update_ratios(tmp_path):
    import math

    model, optimizer, _ = small_loop()
    inputs, targets = torch.randn(48, 8), torch.randint(0, 3, (48,))
    expected = {}
    with nntui.Monitor(model, optimizer, name="ratios", runs_dir=tmp_path, log_every=5, log_interval_s=0,
                       handle_signals=False) as monitor:
        monitor._update_probe.cost_share = math.inf  # measured at every log step, however fast the steps
        for step in range(1, 13):
            before = {name: p.detach().clone() for name, p in model.named_parameters()}
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(inputs), targets)
            loss.backward()
            optimizer.step()
            expected[step] = {name: float((p.detach() - before[name]).norm() / before[name].norm())
                              for name, p in model.named_parameters() if before[name].norm() > 0}
            monitor.step(loss=loss)
        monitor.epoch(val_loss=0.5)  # its record at step 12 was not preceded by a note: no ratios
    records = {r["step"]: r for r in records_of(tmp_path / "ratios", "grad_norms")}
    assert sorted(records) == [5, 10, 12]
    for step in (5, 10):
        ratios = records[step]["update_ratios"]
        assert ratios.keys() == {name for name, _ in model.named_parameters()}
        for name, value in expected[step].items():
            assert ratios[name] == pytest.approx(value, rel=1e-4)
    assert "update_ratios" not in records[12]
