"""Failures described in one line for the user: out of memory says what was being allocated and
what to try. Torch-free, so that the runner can describe an error before torch is imported."""

from __future__ import annotations

import re
from typing import Any

# "tried to allocate 8.00 GiB" (CUDA, MPS) or "you tried to allocate 8589934592 bytes" (the CPU allocator)
_TRIED = re.compile(r"tried to allocate\s+([\d.]+)\s*([KMGTP]i?B|bytes|B)\b", re.IGNORECASE)
_OUT_OF_MEMORY = ("out of memory", "not enough memory", "can't allocate memory", "cannot allocate memory",
                  "defaultcpuallocator: can't allocate")
_UNITS = {"b": 1, "bytes": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "pb": 1e15,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "pib": 2**50}


def is_out_of_memory(error: BaseException) -> bool:
    """A Python MemoryError, torch's OutOfMemoryError (CUDA, MPS) or a CPU allocator failure."""
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and any(marker in text for marker in _OUT_OF_MEMORY)


def allocation_size(text: str) -> str | None:
    """The size an allocator message says it tried to allocate, as e.g. '8.00 GiB'; None if it does not say."""
    found = _TRIED.search(text)
    if found is None:
        return None
    number, unit = float(found.group(1)), found.group(2).lower()
    size = number * _UNITS.get(unit, 1)
    for name, factor in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor:
            return f"{size / factor:.2f} {name}"
    return f"{size:.0f} bytes"


def out_of_memory_message(error: BaseException, config: Any = None, doing: str = "") -> str:
    """One line: out of memory, what was being allocated, and what to try."""
    size = allocation_size(str(error))
    text = str(error).lower()
    memory = "GPU memory" if "cuda" in text or "gpu" in text else "memory"
    what = f"tried to allocate {size}" if size else type(error).__name__
    where = f" while {doing}" if doing else ""
    hint = "a smaller data.batch_size or a smaller model.hidden"
    if config is not None:
        hint = (f"a smaller data.batch_size (now {config.data.batch_size}) or a smaller model.hidden "
                f"(now {config.model.hidden})")
    return f"out of {memory}{where}: {what}; try {hint}"


def one_line(error: BaseException, config: Any = None, doing: str = "") -> str:
    """The error as one line of at most 500 characters; out of memory gets the helpful form."""
    if is_out_of_memory(error):
        return out_of_memory_message(error, config, doing)[:500]
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:500]
