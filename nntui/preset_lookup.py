"""Where presets are found (the built-in folder and the user's own folders) and how they are read.

A preset NAME is the stem of a `.toml` file in one of these folders, looked up in this order
(the first one wins, so a user's own preset shadows a built-in of the same name, as a local
setting overrides a global one):

1. `./presets/` in the current directory (a project's own presets);
2. the user config dir: `$XDG_CONFIG_HOME/nntui/presets` (by default `~/.config/nntui/presets`);
3. the built-in presets, installed with the package.

A folder that is the built-in one (`./presets` inside a source checkout of nntui) counts once,
as built-in. A name that no folder has is taken as a path to a `.toml` file. A factory's file
(`model.factory = "model.py:build"`) is relative to the preset file that names it. Torch-free and
fast: `nntui presets` must answer at once. Problems are `nntui.config.ConfigError`s (one line).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUILTIN = "built-in"
CWD_PRESETS = "presets"  # relative to the current directory


@dataclass(frozen=True)
class PresetFile:
    """One preset file: its name (the file's stem), its path and where it comes from."""

    name: str
    path: Path
    origin: str  # "built-in", or the user folder as shown to the user, e.g. "./presets"

    @property
    def is_builtin(self) -> bool:
        return self.origin == BUILTIN

    @property
    def label(self) -> str:
        """How error messages name the file: built-ins by file name, the user's by their folder."""
        return self.path.name if self.is_builtin else f"{self.origin}/{self.path.name}"


def builtin_preset_dir() -> Path:
    """The built-in presets: `nntui/presets/` in an installed wheel, else the checkout's `presets/`.

    In a source checkout (an editable install, or PYTHONPATH) the presets are the top-level
    `presets/` folder next to the `nntui` package; a wheel carries them as package data.
    """
    package = Path(__file__).resolve().parent
    installed = package / "presets"
    if any(installed.glob("*.toml")):
        return installed
    return package.parent / "presets"


def user_config_presets_dir() -> Path:
    """`$XDG_CONFIG_HOME/nntui/presets`, else the platform's user config dir (`~/.config/nntui` on Linux)."""
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg and Path(xdg).is_absolute():  # the XDG spec says to ignore a relative value
        return Path(xdg) / "nntui" / "presets"
    from platformdirs import user_config_path

    return user_config_path("nntui") / "presets"


def user_preset_dirs() -> list[tuple[str, Path]]:
    """The user's preset folders that exist, as (shown name, path), in lookup order.

    A folder that is the built-in folder, or one already listed, is left out.
    """
    seen = [_identity(builtin_preset_dir())]
    found = []
    candidates = [(_shown(user_config_presets_dir()), user_config_presets_dir())]
    try:
        candidates.insert(0, (f"./{CWD_PRESETS}", Path.cwd() / CWD_PRESETS))
    except OSError:  # the current directory was deleted: it has no presets
        pass
    for shown, folder in candidates:
        identity = _identity(folder)
        if identity is None or identity in seen:
            continue
        seen.append(identity)
        found.append((shown, folder))
    return found


def builtin_presets() -> dict[str, Path]:
    """Built-in preset names mapped to their files, in a stable order."""
    return {path.stem: path for path in sorted(builtin_preset_dir().glob("*.toml"))}


def preset_files() -> list[PresetFile]:
    """Every preset file, the user's first (in lookup order), then the built-ins; sorted by name in each folder."""
    files = [PresetFile(path.stem, path, shown)
             for shown, folder in user_preset_dirs() for path in sorted(folder.glob("*.toml")) if path.is_file()]
    files += [PresetFile(name, path, BUILTIN) for name, path in builtin_presets().items()]
    return files


def find_preset(name: str) -> PresetFile | None:
    """The preset file NAME stands for (the first in lookup order), or None."""
    return next((preset for preset in preset_files() if preset.name == name), None)


def preset_path(name_or_path: str) -> Path:
    """The file of a preset NAME (in lookup order, see above), or of a path to a `.toml` file."""
    return _locate(name_or_path)[0]


def _locate(name_or_path: str) -> tuple[Path, str]:
    """A preset's file and the label that error messages name it by."""
    from nntui.config import ConfigError  # imported here: nntui.config imports this module

    found = find_preset(name_or_path)
    if found is not None:
        return found.path, found.label
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError(f"{name_or_path}: no such preset file")
        return path, str(path)
    names = ", ".join(dict.fromkeys(preset.name for preset in preset_files()))
    raise ConfigError(f"unknown preset {name_or_path!r}; presets: {names}")


def read_preset(name_or_path: str) -> tuple[dict[str, Any], str]:
    """The raw TOML table of a preset and a label for error messages."""
    path, label = _locate(name_or_path)
    return read_preset_file(path, label), label


def read_preset_file(path: Path, label: str) -> dict[str, Any]:
    """The raw TOML table of a preset file; `name` defaults to the file's stem."""
    from nntui.config import ConfigError, tomllib

    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{label}: cannot read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{label}: not valid TOML: {error}") from None
    raw.setdefault("name", path.stem)
    _resolve_factory_files(raw, path.absolute().parent)
    return raw


def _resolve_factory_files(raw: dict[str, Any], folder: Path) -> None:
    """A factory's file given relative to the preset (`model.factory = "model.py:build"`) made absolute."""
    from nntui.config_sections import FACTORY_PATTERN, resolve_factory

    for section in ("model", "data"):
        table = raw.get(section)
        spec = table.get("factory") if isinstance(table, dict) else None
        if isinstance(spec, str) and FACTORY_PATTERN.match(spec.strip()):
            table["factory"] = resolve_factory(spec.strip(), folder)  # type: ignore[index]


def _identity(folder: Path) -> tuple[int, int] | None:
    """The folder's (device, inode), or None when it is not a folder."""
    try:
        status = folder.stat()
    except OSError:
        return None
    return (status.st_dev, status.st_ino) if folder.is_dir() else None


def _shown(path: Path) -> str:
    """`path` with the home directory written as `~`."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except (ValueError, RuntimeError):  # not under home, or no home directory known
        return str(path)
