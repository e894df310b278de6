"""The system pane: CPU use and resident memory of the training process and, on CUDA, the GPU's
utilisation and memory, from its latest `system` record. Styles: system_pane.tcss."""

from __future__ import annotations

from textual.widgets import Static

from nntui.engine.events import SystemSampled

_UNITS = ("B", "KB", "MB", "GB", "TB")


def fmt_bytes(count: int | None) -> str:
    """`412 MB`, `1.5 GB` (powers of 1024, as the OS's tools count memory); `–` for none."""
    if count is None:
        return "–"
    value, unit = float(count), 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    return f"{value:.0f} {_UNITS[unit]}" if value >= 100 or unit == 0 else f"{value:.1f} {_UNITS[unit]}"


def system_lines(sample: SystemSampled | None, device: str) -> tuple[str, ...]:
    """The pane's lines for `sample` of a run on `device` (`cpu`, `cuda:0`, `mps`, ...)."""
    if sample is None:
        return ("waiting for the first sample",)
    lines = [f"CPU {sample.cpu_percent:.0f}%  ·  RSS {fmt_bytes(sample.rss_bytes)}"]
    if not device.startswith("cuda"):
        lines.append(f"no GPU: training on {device or 'the CPU'}")
        return tuple(lines)
    util = "GPU –%" if sample.gpu_util is None else f"GPU {sample.gpu_util:.0f}%"
    lines.append(f"{util}  ·  mem {fmt_bytes(sample.gpu_mem_allocated)} allocated · "
                 f"{fmt_bytes(sample.gpu_mem_reserved)} reserved · {fmt_bytes(sample.gpu_mem_peak)} peak")
    if sample.gpu_util is None:
        lines.append("(GPU utilisation needs nvidia-ml-py: pip install 'nntui[gpu]')")
    return tuple(lines)


class SystemPane(Static):
    """CPU, memory and GPU of the training process; redrawn only when its sample or device changes."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(" ".join(system_lines(None, "")), id=id, classes=classes, markup=False)
        self._shown: tuple[SystemSampled | None, str] | None = None

    def show(self, sample: SystemSampled | None, device: str) -> bool:
        """Draw `sample` of a run on `device`; False (and nothing done) when both are as shown."""
        if self._shown is not None and self._shown[0] is sample and self._shown[1] == device:
            return False
        self._shown = (sample, device)
        self.set_class(sample is None, "-waiting")
        self.set_class(not device.startswith("cuda"), "-no-gpu")
        self.update("\n".join(system_lines(sample, device)))
        return True
