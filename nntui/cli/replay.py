"""`nntui run --replay RUN`: RUN's configuration trained again in a new run directory, with RUN's
recorded commands applied at the same steps (see `nntui.engine.replay`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, Optional

import typer

from nntui.cli.base import fail, new_run_dir

if TYPE_CHECKING:
    from nntui.config import RunConfig
    from nntui.engine.replay import ReplayPlan


def run_replay(spec: str, preset: Optional[str], given: dict[str, object], root: Path, name: Optional[str],
               headless: bool, data_dir: Optional[Path]) -> NoReturn:
    """Replay run `spec` (a directory, a name under `root` or `latest`); `given` holds the other
    options of `run` by flag (None when not given): any of them is refused, as is a PRESET that is
    not RUN's own configuration (the app passes that as a config file). Exits with the run's code.

    A divergence is met as RUN met it: with a pause (and the weights restored) when RUN paused,
    else by stopping (whatever `--diverge` the app passes)."""
    from nntui import paths
    from nntui.config import ConfigError

    if given.get("--resume") is not None or given.get("--fork") is not None:
        fail("--replay starts a new run from RUN's first step: it cannot go with --resume or --fork")
    changed = [flag for flag, value in given.items() if value not in (None, [])]
    if changed:
        fail(f"--replay trains RUN's configuration as it was: {changed[0]} cannot change it")
    try:
        original, cfg, plan = _original(spec, root, preset)
    except ConfigError as error:
        fail(str(error))
    run_dir = new_run_dir(root, name, cfg.name)
    if not plan.commands:
        typer.echo(f"nntui: note: run {plan.run} has no recorded commands: replaying it plainly", err=True)
    on_divergence = "pause" if plan.pauses_on_divergence else "stop"
    if not headless:
        _replay_in_app(cfg, run_dir, data_dir, original)
    raise typer.Exit(_replay_headless(cfg, run_dir, paths.data_dir(data_dir), plan, on_divergence))


def _original(spec: str, root: Path, preset: Optional[str]) -> tuple[Path, "RunConfig", "ReplayPlan"]:
    """RUN's directory, configuration and recorded commands, or a ConfigError (one line)."""
    from nntui.config import ConfigError, load_config
    from nntui.engine.replay import plan_from_records
    from nntui.fs import RunDir
    from nntui.records import scan_records
    from nntui.runs import RunNotFound, config_of_run, resolve_run

    try:
        original = resolve_run(spec, root)
    except RunNotFound as error:
        raise ConfigError(f"--replay: {error}") from None
    cfg = config_of_run(original)
    if preset is not None and load_config(preset).to_dict() != cfg.to_dict():
        raise ConfigError(f"--replay trains the configuration of {original.name}: leave out PRESET")
    # only its start and control records matter: a long run's step records are not decoded
    plan = plan_from_records(original.name, scan_records(RunDir(original).metrics, ("start", "control")))
    if plan.forked_from is not None:
        raise ConfigError(f"run {original.name} is a fork of {plan.forked_from}: a replay from the first step "
                          f"would not reproduce it (replay {plan.forked_from}, or fork it again)")
    return original.absolute(), cfg, plan


def _replay_headless(cfg: "RunConfig", run_dir: Path, data_dir: Path, plan: "ReplayPlan", on_divergence: str) -> int:
    from nntui.console import make_console
    from nntui.engine.replay import Replay
    from nntui.runner import RunRequest, UsageError, run_headless

    replay = Replay(plan)
    request = RunRequest(cfg, run_dir, data_dir, replay=replay, on_divergence=on_divergence,
                         console=make_console(str(run_dir)))
    try:
        code = run_headless(request)
    except UsageError as error:
        fail(str(error))
    if replay.controls.pending:
        first = replay.controls.pending[0]
        typer.echo(f"nntui: note: the replay ended before step {first.step}: "
                   f"{len(replay.controls.pending)} recorded command(s) of {plan.run} not applied", err=True)
    return code


def _replay_in_app(cfg: "RunConfig", run_dir: Path, data_dir: Optional[Path], original: Path) -> NoReturn:
    """The monitor over the replay, trained by the app's child process (`run CONFIG --replay RUN`)."""
    from nntui.tui.app import create_app

    monitor_app = create_app(mode="run", runs_dir=run_dir.parent, data_dir=data_dir, config=cfg,
                             run_name=run_dir.name, fork_args=["--replay", str(original)])
    result = monitor_app.run()
    raise typer.Exit(result if isinstance(result, int) else 0)
