"""The training process keeps freed tensor memory in its heap (glibc) instead of page-faulting it back each step."""

from __future__ import annotations

import ctypes
import subprocess
import sys
import textwrap

import pytest

from nntui.engine.allocator import keep_freed_memory


def glibc_with_mallinfo2() -> bool:
    try:
        ctypes.CDLL(None).mallinfo2  # noqa: B018 (the lookup is the check)
    except (OSError, AttributeError):
        return False
    return sys.platform.startswith("linux")


pytestmark = pytest.mark.skipif(not glibc_with_mallinfo2(), reason="needs glibc 2.33 or newer")

PROBE = textwrap.dedent("""
    import ctypes, sys
    from nntui.engine.allocator import keep_freed_memory

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
    libc.free.argtypes = (ctypes.c_void_p,)
    libc.mallinfo2.restype = MallInfo2
    applied = sys.argv[1] == "on" and keep_freed_memory()
    mib = 1024 * 1024
    libc.free(libc.malloc(mib))  # one step: its buffers are allocated and freed
    for _ in range(3):  # the next steps
        blocks = [libc.malloc(mib - 4096) for _ in range(4)]
        for block in blocks:
            libc.free(block)
    print(applied, libc.mallinfo2().fordblks)
""")


def probe(setting: str) -> tuple[bool, int]:
    """(applied, bytes free in the heap) after steps that allocate and free four 1 MiB buffers."""
    out = subprocess.run([sys.executable, "-c", PROBE, setting], capture_output=True, text=True, check=True).stdout
    applied, free_in_heap = out.split()
    return applied == "True", int(free_in_heap)


def test_freed_step_buffers_stay_in_the_heap():
    applied, free_in_heap = probe("on")
    assert applied
    assert free_in_heap >= 4 * (1024 * 1024 - 4096)  # kept for the next step


def test_by_default_glibc_gives_them_back():
    """The behaviour the setting exists for: without it the heap is trimmed after each step, and
    the next step page-faults its buffers in again."""
    applied, free_in_heap = probe("off")
    assert not applied
    assert free_in_heap < 1024 * 1024


def test_keep_freed_memory_is_idempotent():
    assert keep_freed_memory() and keep_freed_memory()
