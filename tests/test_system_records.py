"""`system` records: the training process's CPU and memory (and on CUDA the GPU's), every few seconds."""

from __future__ import annotations

import math
import sys
import types
from pathlib import Path

import pytest
import torch
from conftest import records, run_cli

import nntui.tui as nntui_tui
from nntui.engine.events import SystemSampled, from_record, to_record
from nntui.engine.system import SystemSampler
from nntui.records import parse_lines, record_line


def test_a_run_writes_system_records_with_sane_values(tmp_path):
    result = run_cli("run", "digits-mlp", "--headless", "--epochs", "2", "--set", "train.log_interval_s=0",
                     "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    recs = records(run_dir)
    samples = [r for r in recs if r["event"] == "system"]
    assert samples, [r["event"] for r in recs]
    end = recs[-1]
    assert end["event"] == "end" and recs.index(samples[-1]) < len(recs) - 1
    for sample in samples:
        assert math.isfinite(sample["cpu_percent"]) and 0 <= sample["cpu_percent"] <= 100 * 64
        assert 20 * 2**20 < sample["rss_bytes"] < 64 * 2**30  # torch alone takes more than 20 MB
        assert 0 <= sample["step"] <= end["step"]
        assert not any(key.startswith("gpu_") for key in sample)  # no GPU on a CPU run
        event = from_record(sample)
        assert isinstance(event, SystemSampled) and event.rss_bytes == sample["rss_bytes"]


@pytest.mark.parametrize("sample", [
    SystemSampled(cpu_percent=93.5, rss_bytes=412_000_000, step=120, time=1_700_000_000.5),
    SystemSampled(cpu_percent=101.0, rss_bytes=2**33, gpu_util=87.0, gpu_mem_allocated=2**30,
                  gpu_mem_reserved=2**31, gpu_mem_peak=3 * 2**29, step=7, time=1_700_000_001.0),
])
def test_a_system_record_round_trips(sample):
    line = record_line(to_record(sample))
    assert line.startswith('{"event":"system"')
    (record,) = parse_lines(line)
    assert from_record(record) == sample


def test_a_system_record_without_usable_cpu_or_memory_is_skipped():
    assert from_record({"event": "system", "cpu_percent": 3.0}) is None
    assert from_record({"event": "system", "cpu_percent": "x", "rss_bytes": 1}) is None


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_samples_come_early_then_every_few_seconds():
    clock = Clock()
    sampler = SystemSampler(torch.device("cpu"), every_s=5.0, first_after_s=0.5, clock=clock)
    assert not sampler.due(100.4) and sampler.due(100.5)
    clock.now = 100.6
    assert sampler.sample(step=3).step == 3 and sampler.taken == 1
    assert not sampler.due(105.5) and sampler.due(105.6)


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch.cuda's allocator counters and utilisation as a machine with one GPU would give them."""
    calls = []
    for name, value in (("memory_allocated", 3 * 2**20), ("memory_reserved", 8 * 2**20),
                        ("max_memory_allocated", 5 * 2**20), ("utilization", 42)):
        def counter(device=None, name=name, value=value):
            calls.append((name, device))
            return value
        monkeypatch.setattr(torch.cuda, name, counter)
    return calls


def test_on_cuda_a_sample_has_the_gpus_utilisation_and_memory(fake_cuda, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", types.ModuleType("pynvml"))  # nvidia-ml-py installed
    device = torch.device("cuda", 0)
    sample = SystemSampler(device).sample(step=9)
    assert (sample.gpu_util, sample.gpu_mem_allocated, sample.gpu_mem_reserved, sample.gpu_mem_peak) == \
        (42.0, 3 * 2**20, 8 * 2**20, 5 * 2**20)
    assert {device_asked for _, device_asked in fake_cuda} == {device}
    assert from_record(to_record(sample)) == sample


def test_on_cuda_without_nvidia_ml_py_the_memory_is_there_and_the_utilisation_is_none(fake_cuda, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    sampler = SystemSampler(torch.device("cuda"))
    first, second = sampler.sample(step=1), sampler.sample(step=2)
    assert first.gpu_util is None and first.gpu_mem_allocated == 3 * 2**20 and first.gpu_mem_peak == 5 * 2**20
    assert second.gpu_util is None and ("utilization", torch.device("cuda")) not in fake_cuda


# ------------------------------------------------------------------------------- the pane


def pane_app():
    from textual.app import App, ComposeResult

    from nntui.tui.system_pane import SystemPane

    class PaneApp(App):
        CSS_PATH = str(Path(nntui_tui.__file__).with_name("system_pane.tcss"))

        def compose(self) -> ComposeResult:
            yield SystemPane(id="system")

    return PaneApp()


def pane_text(pane) -> str:
    return str(pane.content)


async def test_the_system_pane_shows_cpu_and_memory_and_says_there_is_no_gpu():
    app = pane_app()
    async with app.run_test(size=(80, 6)) as pilot:
        pane = app.query_one("#system")
        assert "waiting for the first sample" in pane_text(pane)
        sample = SystemSampled(cpu_percent=93.6, rss_bytes=412 * 2**20, step=5)
        assert pane.show(sample, "cpu") is True
        await pilot.pause()
        text = pane_text(pane)
        assert "CPU 94%" in text and "RSS 412 MB" in text
        assert [line for line in text.splitlines() if "GPU" in line] == ["no GPU: training on cpu"]
        assert pane.show(sample, "cpu") is False  # nothing changed: nothing redrawn
        assert pane.show(SystemSampled(cpu_percent=50.0, rss_bytes=2**30, step=9), "cpu") is True
        assert "CPU 50%" in pane_text(pane) and "RSS 1.0 GB" in pane_text(pane)


async def test_the_system_pane_shows_the_gpu_on_cuda():
    app = pane_app()
    async with app.run_test(size=(100, 6)) as pilot:
        pane = app.query_one("#system")
        pane.show(SystemSampled(cpu_percent=101.0, rss_bytes=3 * 2**30, gpu_util=87.0, gpu_mem_allocated=2**30,
                                gpu_mem_reserved=2 * 2**30, gpu_mem_peak=int(1.5 * 2**30), step=1), "cuda:0")
        await pilot.pause()
        text = pane_text(pane)
        assert "GPU 87%" in text and "1.0 GB allocated" in text and "2.0 GB reserved" in text and "1.5 GB peak" in text
        assert "no GPU" not in text and "nvidia-ml-py" not in text
        pane.show(SystemSampled(cpu_percent=1.0, rss_bytes=1, gpu_mem_allocated=5, step=2), "cuda:0")
        assert "GPU –%" in pane_text(pane) and "nvidia-ml-py" in pane_text(pane)
