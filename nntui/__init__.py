"""nntui: a terminal training monitor for PyTorch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Monitor", "__version__"]

if TYPE_CHECKING:
    from nntui.watch import Monitor


def __getattr__(name: str) -> Any:
    """`nntui.Monitor`, imported when first used: `import nntui` stays light (no torch)."""
    if name == "Monitor":
        from nntui.watch import Monitor

        return Monitor
    raise AttributeError(f"module 'nntui' has no attribute {name!r}")
