"""What `nntui run SCRIPT.py` and the script's `nntui.Monitor` agree on. No torch here.

`nntui run SCRIPT.py` makes the run directory, names it in `RUN_DIR_ENV` for the script, and
sends the script's stdout and stderr to `OUTPUT_LOG` in it; the script's first `nntui.Monitor`
writes its records there.
"""

from __future__ import annotations

RUN_DIR_ENV = "NNTUI_RUN_DIR"
OUTPUT_LOG = "output.log"  # the script's stdout and stderr, in its run directory
