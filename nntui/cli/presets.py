"""`nntui presets` and `nntui presets show NAME`: the built-in presets and the user's own."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from nntui.cli.base import app, fail

if TYPE_CHECKING:
    from nntui.preset_lookup import PresetFile

presets_app = typer.Typer(help="List the built-in presets, or print one fully resolved.")
app.add_typer(presets_app, name="presets")


@presets_app.callback(invoke_without_command=True)
def presets_list(ctx: typer.Context) -> None:
    """List the presets: built-in ones and your own (in ./presets and ~/.config/nntui/presets).

    Your own preset shadows a built-in one of the same name (./presets first); the listing says so.
    """
    if ctx.invoked_subcommand is not None:
        return
    from nntui.config import ConfigError, preset_files, read_preset_file

    files = preset_files()
    winners = {}
    for preset in files:  # lookup order: the first file of a name is the one `run NAME` takes
        winners.setdefault(preset.name, preset)
    rows = []
    for preset in sorted(files, key=lambda preset: preset.name):  # stable: the one in use first
        try:
            description = str(read_preset_file(preset.path, preset.label).get("description", ""))
        except ConfigError as error:
            description = f"(cannot be used: {error})"
        rows.append((preset.name, _preset_source(preset, winners[preset.name]), description))
    name_width = max(len(row[0]) for row in rows)
    source_width = max(len(row[1]) for row in rows)
    for name, source, description in rows:
        typer.echo(f"{name:<{name_width}}  {source:<{source_width}}  {description}".rstrip())


def _preset_source(preset: "PresetFile", winner: "PresetFile") -> str:
    """`built-in` or `user: FOLDER`, and whether a user's preset of the same name shadows it."""
    source = "built-in" if preset.is_builtin else f"user: {preset.origin}"
    if winner is not preset:
        source += f" (shadowed by {winner.origin})"
    return source


@presets_app.command("show")
def presets_show(name: Annotated[str, typer.Argument(help="A preset name or a .toml file.")]) -> None:
    """Print one preset fully resolved, as TOML (a comment line says which file it came from)."""
    from nntui.config import ConfigError, find_preset, load_config

    try:
        resolved = load_config(name).to_toml()
    except ConfigError as error:
        fail(str(error))
    found = find_preset(name)
    if found is not None and not found.is_builtin:
        typer.echo(f"# {found.label}: a preset of your own{shadow_note(found)}")
    typer.echo(resolved, nl=False)


def shadow_note(preset: "PresetFile") -> str:
    """`, shadowing the built-in one` when a built-in preset has the same name, else ``."""
    from nntui.config import builtin_presets

    return ", shadowing the built-in one" if preset.name in builtin_presets() else ""
