"""A runs dir that others can write (0777, or 1777 like /tmp): another user's links and swapped
directories never make a run write anywhere but its own files. Needs root and `useradd`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import count_records, finish_cli, records, run_cli, start_cli, wait_until

INTRUDER = "nntui-intruder"
PRECIOUS = "precious\n"
QUICK = ["--epochs", "1", "--set", "train.log_interval_s=0"]


@pytest.fixture(scope="module")
def intruder():
    """(uid, gid) of a second Unix user, made for these tests and removed after them."""
    import pwd

    if os.getuid() != 0 or not shutil.which("useradd"):
        pytest.skip("needs root and useradd")
    created = False
    try:
        entry = pwd.getpwnam(INTRUDER)
    except KeyError:
        made = subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", INTRUDER],
                              capture_output=True, text=True, timeout=60, check=False)
        if made.returncode != 0:
            pytest.skip(f"useradd failed: {made.stderr.strip()}")
        created, entry = True, pwd.getpwnam(INTRUDER)
    yield entry.pw_uid, entry.pw_gid
    if created:
        subprocess.run(["userdel", INTRUDER], capture_output=True, timeout=60, check=False)


@pytest.fixture
def shared(intruder):
    """A directory under /tmp that the intruder can reach, with a root-owned victim file and folder."""
    base = Path(tempfile.mkdtemp(prefix="nntui-shared-", dir="/tmp"))
    os.chmod(base, 0o755)
    (base / "victim").mkdir(mode=0o755)
    (base / "victim" / "precious.txt").write_text(PRECIOUS)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def as_intruder(intruder, script: str) -> subprocess.CompletedProcess:
    uid, gid = intruder
    return subprocess.run(["/bin/sh", "-c", script], user=uid, group=gid, extra_groups=[], cwd="/",
                          capture_output=True, text=True, timeout=60, check=False)


def runs_dir(base: Path, mode: int) -> Path:
    runs = base / "runs"
    runs.mkdir()
    os.chmod(runs, mode)
    return runs


def victim_untouched(base: Path) -> bool:
    victim = base / "victim"
    return os.listdir(victim) == ["precious.txt"] and (victim / "precious.txt").read_text() == PRECIOUS


def refused(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    return lines[-1]


@pytest.mark.parametrize("mode", [0o777, 0o1777])
def test_a_link_planted_at_the_run_dir_name_is_refused(shared, intruder, mode) -> None:
    runs = runs_dir(shared, mode)
    planted = as_intruder(intruder, f"ln -s {shared}/victim {runs}/x && ln -s {shared}/made-by-root {runs}/y")
    assert planted.returncode == 0, planted.stderr
    for name in ("x", "y"):  # a link to a directory, and one to where the run would make its own
        result = run_cli("run", "digits-mlp", "--headless", "--runs-dir", str(runs), "--name", name, *QUICK,
                         cwd=shared)
        assert "already exists" in refused(result)
    assert victim_untouched(shared) and not (shared / "made-by-root").exists()


@pytest.mark.parametrize("mode", [0o777, 0o1777])
def test_another_users_directory_at_a_run_name_is_never_written(shared, intruder, mode) -> None:
    """The intruder's own directory, its files links to ours (root reads through them): resuming it
    must not write the records, the error log or checkpoints through those links."""
    mine = shared / "mine"
    done = run_cli("run", "digits-mlp", "--headless", "--runs-dir", str(mine), "--name", "real", *QUICK, cwd=shared)
    assert done.returncode == 0, done.stderr
    real = mine / "real"
    before = {path.name: path.read_bytes() for path in (real / "checkpoints").iterdir()}
    runs = runs_dir(shared, mode)
    victim = shared / "victim" / "precious.txt"
    planted = as_intruder(intruder, f"mkdir -m 777 {runs}/x && cd {runs}/x && ln -s {real}/config.toml config.toml"
                                    f" && ln -s {victim} metrics.jsonl && ln -s {victim} error.log"
                                    f" && ln -s {victim} summary.json && ln -s {real}/checkpoints checkpoints")
    assert planted.returncode == 0, planted.stderr
    result = run_cli("run", "--resume", "x", "--headless", "--runs-dir", str(runs), "--epochs", "2", cwd=shared)
    assert f"run directory {runs / 'x'} is owned by uid {intruder[0]}, not by you" in refused(result)
    assert victim_untouched(shared)
    assert {path.name: path.read_bytes() for path in (real / "checkpoints").iterdir()} == before


@pytest.mark.parametrize("mode", [0o777, 0o1777])
def test_a_run_dir_swapped_during_the_run_keeps_the_writes_in_the_run(shared, intruder, mode) -> None:
    runs = runs_dir(shared, mode)
    proc = start_cli("run", "digits-mlp", "--headless", "--runs-dir", str(runs), "--name", "x", "--epochs", "3",
                     "--set", "train.log_interval_s=0", "--set", "train.checkpoint_every_s=0", cwd=shared)
    run = runs / "x"
    wait_until(lambda: count_records(run, "start") or proc.poll() is not None, interval=0.005, what="the start")
    proc.send_signal(signal.SIGSTOP)
    victim = shared / "victim" / "precious.txt"
    swap = as_intruder(intruder, f"mv {run} {runs}/moved && mkdir -m 777 {run} && cd {run} && mkdir checkpoints"
                                 f" && ln -s {victim} metrics.jsonl && ln -s {victim} summary.json"
                                 f" && ln -s {victim} error.log && ln -s {victim} checkpoints/last.pt")
    proc.send_signal(signal.SIGCONT)
    result = finish_cli(proc)
    assert result.returncode == 0, result.stderr
    assert victim_untouched(shared)
    if mode & 0o1000:  # sticky: only the owner may rename its directory
        assert swap.returncode != 0 and records(run)[-1]["status"] == "completed"
    else:
        assert swap.returncode == 0, swap.stderr
        assert records(runs / "moved")[-1]["status"] == "completed"
        assert (runs / "moved" / "summary.json").is_file() and (runs / "moved" / "checkpoints" / "last.pt").is_file()
    real = runs / ("x" if mode & 0o1000 else "moved")
    for path in [real, *real.rglob("*")]:
        assert path.stat().st_uid == 0
        assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), path


def test_latest_and_runs_see_only_the_users_own_runs(shared, intruder, monkeypatch) -> None:
    from nntui import runs as runs_module
    from nntui.fs import RunDir

    runs = runs_dir(shared, 0o1777)
    for name, started in (("mine", 100.0), ("theirs", 200.0)):  # theirs is the newest
        run = RunDir(runs / name)
        run.control.mkdir(parents=True)
        run.metrics.write_text(f'{{"event":"start","time":{started},"preset":"p","pid":1}}\n')
    sleeper = subprocess.Popen(["sleep", "60"], user=intruder[0], group=intruder[1], extra_groups=[])
    try:
        RunDir(runs / "theirs").pid_file.write_text(f"{sleeper.pid}\n")
        for path in [runs / "theirs", *(runs / "theirs").rglob("*")]:
            os.chown(path, *intruder)
        assert runs_module.resolve_run("latest", runs) == runs / "mine"
        assert [info.name for info in runs_module.list_runs(runs)] == ["mine"]
        listed = {info.name: info.status for info in runs_module.list_runs(runs, all_users=True)}
        assert listed == {"mine": "crashed", "theirs": f"running (owned by {INTRUDER})"}
        real_kill = os.kill

        def not_permitted(pid: int, sig: int) -> None:  # as a non-root user sees another user's process
            if pid == sleeper.pid and sig == 0:
                raise PermissionError(1, "Operation not permitted")
            real_kill(pid, sig)

        monkeypatch.setattr(os, "kill", not_permitted)
        assert runs_module.run_info(runs / "theirs").status == f"running (owned by {INTRUDER})"
        table = run_cli("runs", "--all", "--plain", "--runs-dir", str(runs), cwd=shared)
        if table.returncode != 0:  # --plain may not exist on this branch
            table = run_cli("runs", "--all", "--runs-dir", str(runs), cwd=shared)
        assert f"running (owned by {INTRUDER})" in table.stdout and "mine" in table.stdout, table.stderr
        assert "theirs" not in run_cli("runs", "--runs-dir", str(runs), cwd=shared).stdout
    finally:
        sleeper.kill()
        sleeper.wait()
