"""`nntui run`: a new run of a preset, or a run resumed, under the monitor or headless."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, Optional

import typer

from nntui.cli.base import app, fail, new_run_dir
from nntui.cli.presets import shadow_note

if TYPE_CHECKING:
    from nntui.config import RunConfig
    from nntui.engine.fork import Fork

TRAINING, OUTPUT, RESUME = "Training overrides", "Where things go", "Resume or fork"

# the options of `run` that set a preset key, named as the user types them in messages
OPTION_FLAGS = {"train.epochs": "--epochs", "data.batch_size": "--batch-size", "optim.lr": "--lr",
                "optim.name": "--optimizer", "train.device": "--device", "train.seed": "--seed"}


def _apply_options(preset: str, sets: list[str], options: dict[str, object]) -> "RunConfig":
    """The preset with the `--set` overrides, then the options given (preset key -> value or None)."""
    from nntui.config import load_config

    given = [(OPTION_FLAGS[key], key, value) for key, value in options.items() if value is not None]
    return load_config(preset, sets, given)


@app.command(no_args_is_help=False, context_settings={"allow_extra_args": True})  # a script's `-- ARGS`
def run(
    ctx: typer.Context,
    preset: Annotated[Optional[str], typer.Argument(help="A built-in preset name or a .toml file.")] = None,
    headless: Annotated[bool, typer.Option("--headless", help="No TUI: progress on the terminal, or plain lines in a log.")] = False,
    epochs: Annotated[Optional[int], typer.Option(help="Epochs to train.", rich_help_panel=TRAINING)] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Batch size.", rich_help_panel=TRAINING)] = None,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate.", rich_help_panel=TRAINING)] = None,
    optimizer: Annotated[Optional[str], typer.Option(help="sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw.", rich_help_panel=TRAINING)] = None,
    device: Annotated[Optional[str], typer.Option(help="auto, cpu, cuda, cuda:N or mps.", rich_help_panel=TRAINING)] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed.", rich_help_panel=TRAINING)] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="KEY=VALUE into the preset, e.g. regularization.penalty=l1 (repeatable).", rich_help_panel=TRAINING)] = None,
    runs_dir: Annotated[Optional[Path], typer.Option(help="Runs directory (default ./runs or $NNTUI_RUNS_DIR).", rich_help_panel=OUTPUT)] = None,
    name: Annotated[Optional[str], typer.Option(help="Run name (default YYYYmmdd-HHMMSS-PRESET).", rich_help_panel=OUTPUT)] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Data sets directory (default: user cache or $NNTUI_DATA_DIR).", rich_help_panel=OUTPUT)] = None,
    resume: Annotated[Optional[str], typer.Option(help="Continue RUN (a directory, a name or 'latest') from its last checkpoint.", rich_help_panel=RESUME)] = None,
    fork: Annotated[Optional[str], typer.Option(help="A new run from RUN's checkpoint (RUN@last, the default, or RUN@best) with the options given.", rich_help_panel=RESUME)] = None,
    replay: Annotated[Optional[str], typer.Option(help="A new run of RUN's configuration with RUN's recorded commands applied at the same steps.", rich_help_panel=RESUME)] = None,
    diverge: Annotated[str, typer.Option(hidden=True, help="stop or pause on a non-finite loss.")] = "stop",
) -> None:
    """Train PRESET with the live monitor, or with --headless for batch jobs. PRESET may be a
    script of yours (`nntui run train.py -- ARGS`) that uses nntui.Monitor."""
    from nntui import paths
    from nntui.cli.script import is_script, run_script
    from nntui.config import ConfigError

    if is_script(preset):
        given = {"--epochs": epochs, "--batch-size": batch_size, "--lr": lr, "--optimizer": optimizer,
                 "--device": device, "--seed": seed, "--set": set_, "--data-dir": data_dir, "--resume": resume,
                 "--fork": fork, "--replay": replay}
        run_script(Path(preset), ctx.args, headless=headless, runs_dir=runs_dir, name=name,  # type: ignore[arg-type]
                   refused=[flag for flag, value in given.items() if value is not None])
    if ctx.args:
        fail(f"unexpected arguments {' '.join(ctx.args)} (only a script takes `-- ARGS`)")

    options: dict[str, object] = {"train.epochs": epochs, "data.batch_size": batch_size, "optim.name": optimizer,
                                  "train.device": device, "train.seed": seed}
    root = paths.runs_dir(runs_dir)
    if replay is not None:
        from nntui.cli.replay import run_replay

        given = {"--resume": resume, "--fork": fork, "--lr": lr, "--set": set_,
                 **{OPTION_FLAGS[key]: value for key, value in options.items()}}
        run_replay(replay, preset, given, root, name, headless, data_dir)
    forked: Optional[Fork] = None
    try:
        if resume is not None:
            if fork is not None:
                raise ConfigError("--resume continues a run, --fork starts a new one: give one of them")
            cfg, run_dir = _resume_config(resume, root, preset, set_ or [], options)
        else:
            cfg, run_dir, forked = _new_run(preset, fork, set_ or [], {**options, "optim.lr": lr}, root, name)
    except (ConfigError, ValueError) as error:
        fail(str(error))
    if diverge not in ("stop", "pause"):
        fail("--diverge must be stop or pause")
    if preset is not None and resume is None and fork is None:
        _note_shadowing(preset)
    if not headless:
        _run_in_app(cfg, run_dir, data_dir, resume is not None, lr if resume else None, epochs, device, forked)
    raise typer.Exit(_run_headless(cfg, run_dir, paths.data_dir(data_dir), resume is not None,
                                   lr if resume else None, diverge, forked))


def _new_run(preset: Optional[str], fork: Optional[str], sets: list[str], options: dict[str, object], root: Path,
             name: Optional[str]) -> tuple["RunConfig", Path, Optional["Fork"]]:
    """A new run's configuration and directory (not made yet), and the checkpoint it forks from."""

    forked = None
    if fork is not None:
        cfg, forked = _fork_config(fork, root, preset, sets, options)
    elif preset is None:
        fail("run needs a PRESET (see `nntui presets`), --resume RUN or --fork RUN")
    else:
        cfg = _apply_options(preset, sets, options)
    return cfg, new_run_dir(root, name, cfg.name), forked


def _fork_config(spec: str, root: Path, preset: Optional[str], sets: list[str],
                 options: dict[str, object]) -> tuple["RunConfig", "Fork"]:
    """A fork of RUN[@last|@best]: RUN's configuration (or PRESET's: the app passes the fork's
    settings as a config file) with the --set and options given; and the checkpoint it starts from."""
    from nntui.config import ConfigError, apply_overrides, load_config
    from nntui.engine.fork import Fork
    from nntui.fs import RunDir
    from nntui.runs import RunNotFound, config_of_run, resolve_run

    run, _, which = spec.rpartition("@")
    if not run or "/" in which:  # no @, or one in a directory's path: the last checkpoint
        run, which = spec, "last"
    if which not in ("last", "best"):
        raise ConfigError(f"--fork {spec}: @{which} is not a checkpoint (use RUN@last or RUN@best)")
    try:
        parent_dir = resolve_run(run, root)
    except RunNotFound as error:
        raise ConfigError(f"--fork: {error}") from None
    files = RunDir(parent_dir)
    checkpoint = files.last_checkpoint if which == "last" else files.best_checkpoint
    if not checkpoint.is_file():
        raise ConfigError(f"run {parent_dir.name} has no {RunDir.CHECKPOINTS}/{checkpoint.name} to fork from")
    parent = config_of_run(parent_dir)
    given = [(OPTION_FLAGS[key], key, value) for key, value in options.items() if value is not None]
    cfg = load_config(preset, sets, given) if preset is not None else apply_overrides(
        parent.to_dict(), f"{parent_dir.name}/{RunDir.CONFIG}", sets, given)
    lr = options.get("optim.lr")  # --lr, or an optim.lr changed otherwise, over the checkpoint's LR
    lr = cfg.optim.lr if lr is not None or cfg.optim.lr != parent.optim.lr else None
    return cfg, Fork(checkpoint.absolute(), parent_dir.name, parent, lr)


def _note_shadowing(name: str) -> None:
    """One line on stderr when NAME is a user's preset that hides a built-in one of the same name."""
    from nntui.config import find_preset

    found = find_preset(name)
    shadowing = shadow_note(found) if found is not None and not found.is_builtin else ""
    if found is not None and shadowing:
        typer.echo(f"nntui: note: preset {name} is {found.label}{shadowing}", err=True)


def _resume_config(run: str, root: Path, preset: Optional[str], sets: list[str],
                   options: dict[str, object]) -> tuple["RunConfig", Path]:
    """RUN's directory and its configuration as saved, with the --epochs and --device given."""
    from nntui.config import ConfigError, apply_overrides
    from nntui.fs import RunDir
    from nntui.runs import RunNotFound, is_live, read_config_table, resolve_run

    if preset is not None or sets or any(options[k] is not None for k in ("data.batch_size", "optim.name", "train.seed")):
        raise ConfigError("--resume continues a run as it was configured: only --epochs, --lr and --device may change")
    try:
        run_dir = resolve_run(run, root)
    except RunNotFound as error:
        raise ConfigError(str(error)) from None
    if is_live(run_dir):
        raise ConfigError(f"run {run_dir.name} is still running; steer it with `nntui ctl` or `nntui attach`")
    files = RunDir(run_dir)
    if not files.last_checkpoint.is_file():
        raise ConfigError(f"run {run_dir.name} has no {RunDir.CHECKPOINTS}/{RunDir.LAST} to resume from")
    raw = read_config_table(run_dir)
    changes = [(OPTION_FLAGS[key], key, options[key]) for key in ("train.epochs", "train.device")
               if options[key] is not None]
    cfg = apply_overrides(raw, f"{run_dir.name}/{RunDir.CONFIG}", options=changes)
    _check_resumable(run_dir, cfg.train.epochs)
    return cfg, run_dir


def _check_resumable(run_dir: Path, epochs: int) -> None:
    """A finished run is continued only to train more epochs; one that stopped early, never."""
    from nntui.config import ConfigError
    from nntui.runs import last_end

    end = last_end(run_dir)
    status, done = (end or {}).get("status"), int((end or {}).get("epoch") or 0)
    if status == "early_stopped":
        raise ConfigError(f"run {run_dir.name} stopped early at epoch {done} "
                          f"({(end or {}).get('reason') or 'no improvement'}); there is nothing to resume")
    if status == "completed" and epochs <= done:
        raise ConfigError(f"run {run_dir.name} has completed its {done} epochs; "
                          f"pass --epochs N (more than {done}) to train it further")


def _parsed_lr(lr: Optional[float]) -> Optional[float]:
    """The --lr of a resumed run, checked as a command's learning rate (a one-line failure otherwise)."""
    from nntui.engine.control import CommandError, parse_lr

    try:
        return parse_lr(lr) if lr is not None else None
    except CommandError as error:
        fail(f"--lr: {error}")


def _run_headless(cfg: "RunConfig", run_dir: Path, data_dir: Path, resume: bool, lr: Optional[float],
                  diverge: str, fork: Optional["Fork"] = None) -> int:
    from nntui.console import make_console
    from nntui.runner import RunRequest, UsageError, run_headless

    request = RunRequest(cfg, run_dir, data_dir, resume=resume, fork=fork, lr=_parsed_lr(lr),
                         on_divergence=diverge, console=make_console(str(run_dir)))
    try:
        return run_headless(request)
    except UsageError as error:
        fail(str(error))


def _run_in_app(cfg: "RunConfig", run_dir: Path, data_dir: Optional[Path], resume: bool, lr: Optional[float],
                epochs: Optional[int] = None, device: Optional[str] = None,
                fork: Optional["Fork"] = None) -> NoReturn:
    """The monitor over a new run of `cfg` in `run_dir` (a fork: its child starts from the parent's
    checkpoint), or over `run_dir` resumed (with the --lr/--epochs/--device the user gave: the
    child process applies them as `--headless` does)."""
    from nntui.tui.app import create_app
    from nntui.tui.launcher import resume_options

    if not resume:
        monitor_app = create_app(mode="run", runs_dir=run_dir.parent, data_dir=data_dir, config=cfg,
                                 run_name=run_dir.name, fork_args=fork.argv() if fork else ())
    else:
        monitor_app = create_app(mode="run", runs_dir=run_dir.parent, data_dir=data_dir, resume_dir=run_dir,
                                 resume_args=resume_options(lr=_parsed_lr(lr), epochs=epochs, device=device))
    result = monitor_app.run()
    raise typer.Exit(result if isinstance(result, int) else 0)
