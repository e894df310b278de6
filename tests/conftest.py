"""Shared fixtures: small, fast configurations and a helper to run the CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 240,
            stdout_path: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m nntui ARGS` in a subprocess, stdout redirected to a file as in a batch job."""
    full_env = {**os.environ, "NNTUI_DATA_DIR": str(cwd / "data"), **(env or {})}
    full_env.pop("NNTUI_RUNS_DIR", None)
    out = stdout_path or cwd / "stdout.log"
    with open(out, "w") as stream:
        proc = subprocess.run([sys.executable, "-m", "nntui", *args], cwd=cwd, env=full_env, stdout=stream,
                              stderr=subprocess.PIPE, text=True, timeout=timeout)
    proc.stdout = out.read_text()  # type: ignore[misc]
    return proc


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture
def small_digits():
    from nntui.config import load_config

    def make(*sets: str):
        return load_config("digits-mlp", ["train.epochs=3", "train.log_every=5", *sets])

    return make
