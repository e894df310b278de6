"""A signal while the data is still loading stops at once, with nothing written."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

SLOW_LOAD = """
import sys, time
import nntui.data
def slow_build_data(*args, **kwargs):
    print("loading", flush=True)
    time.sleep(60)
nntui.data.build_data = slow_build_data
from nntui.cli import main
sys.argv = ["nntui", "run", "digits-mlp", "--headless", "--runs-dir", sys.argv[1]]
main()
"""


@pytest.mark.slow
@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_data_loading_exits_at_once(tmp_path, signum, code):
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_LOAD, str(runs)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "loading"
    started = time.monotonic()
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == code, stderr
    assert time.monotonic() - started < 10
    assert "before training started: nothing written" in stderr and "Traceback" not in stderr
    assert not runs.exists()
