"""Where presets come from: the top-level presets/ folder (installed with the package), and the
user's own in ./presets and $XDG_CONFIG_HOME/nntui/presets, which shadow a built-in of the same name."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from typer.testing import CliRunner

from nntui.cli import app
from nntui.config import ConfigError, builtin_preset_dir, builtin_presets, load_config, preset_files, preset_path

runner = CliRunner()
BUILTINS = ("digits-mlp", "diabetes-mlp", "mnist-mlp", "mnist-mlp-dropout", "fashion-mnist-mlp",
            "cifar10-vgg", "cifar10-resnet18")
MINE = 'description = "{description}"\n[model]\nhidden = [{width}]\n[train]\nepochs = 2\n'


@pytest.fixture
def user_dirs(tmp_path, monkeypatch):
    """A fresh current directory and config dir; returns (./presets, $XDG_CONFIG_HOME/nntui/presets)."""
    work, config = tmp_path / "work", tmp_path / "config"
    (work / "presets").mkdir(parents=True)
    (config / "nntui" / "presets").mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return work / "presets", config / "nntui" / "presets"


def write_preset(folder: Path, name: str, description: str, width: int) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(MINE.format(description=description, width=width), encoding="utf-8")
    return path


def listing() -> dict[str, list[str]]:
    """`nntui presets` as name -> its lines."""
    result = runner.invoke(app, ["presets"])
    assert result.exit_code == 0, result.output
    lines: dict[str, list[str]] = {}
    for line in result.output.splitlines():
        lines.setdefault(line.split()[0], []).append(line)
    return lines


def test_the_built_in_presets_live_in_the_top_level_folder():
    assert builtin_preset_dir() == ROOT / "presets"
    assert tuple(sorted(builtin_presets())) == tuple(sorted(BUILTINS))
    assert not (ROOT / "nntui" / "presets").exists()


def test_inside_the_checkout_the_built_in_folder_is_listed_once_as_built_in(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)  # here ./presets IS the built-in folder
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    lines = listing()
    assert set(lines) == set(BUILTINS)
    assert all(len(found) == 1 and " built-in " in found[0] for found in lines.values())


def test_user_presets_are_listed_marked_and_found_by_run_and_show(user_dirs):
    local, config = user_dirs
    write_preset(local, "local-one", "from the project", 7)
    write_preset(config, "config-one", "from the config dir", 9)
    lines = listing()
    assert set(BUILTINS) <= set(lines)
    assert "user: ./presets" in lines["local-one"][0] and "from the project" in lines["local-one"][0]
    assert f"user: {config}" in lines["config-one"][0] and "from the config dir" in lines["config-one"][0]
    assert " built-in " in lines["digits-mlp"][0]
    assert load_config("local-one").model.hidden == [7] and load_config("config-one").model.hidden == [9]
    shown = runner.invoke(app, ["presets", "show", "config-one"])
    assert shown.exit_code == 0 and "hidden = [\n    9,\n]" in shown.output
    assert shown.output.startswith(f"# {config}/config-one.toml: a preset of your own\n")


def test_the_default_config_dir_is_dot_config_under_home(user_dirs, monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CONFIG_HOME")
    folder = tmp_path / "home" / ".config" / "nntui" / "presets"
    folder.mkdir(parents=True)
    write_preset(folder, "home-one", "from ~/.config", 5)
    assert "user: ~/.config/nntui/presets" in listing()["home-one"][0]
    assert load_config("home-one").model.hidden == [5]


def test_the_users_own_preset_shadows_a_built_in_and_the_nearer_folder_wins(user_dirs):
    local, config = user_dirs
    write_preset(config, "digits-mlp", "my digits, config dir", 11)
    assert load_config("digits-mlp").model.hidden == [11]
    lines = listing()["digits-mlp"]
    assert len(lines) == 2 and "user: " in lines[0] and "my digits, config dir" in lines[0]
    assert f"built-in (shadowed by {config})" in lines[1]
    write_preset(local, "digits-mlp", "my digits, project", 13)
    assert load_config("digits-mlp").model.hidden == [13]  # ./presets before the config dir
    lines = listing()["digits-mlp"]
    assert [("user: ./presets" in line, "shadowed by ./presets" in line) for line in lines] == [
        (True, False), (False, True), (False, True)]
    shown = runner.invoke(app, ["presets", "show", "digits-mlp"])
    assert shown.output.splitlines()[0] == "# ./presets/digits-mlp.toml: a preset of your own, shadowing the built-in one"


def test_a_broken_user_preset_is_listed_and_named_when_used(user_dirs):
    local, _ = user_dirs
    (local / "broken.toml").write_text("[optim\n", encoding="utf-8")
    assert "cannot be used" in listing()["broken"][0]
    with pytest.raises(ConfigError, match=r"^\./presets/broken\.toml: not valid TOML"):
        load_config("broken")
    result = runner.invoke(app, ["run", "broken", "--headless", "--runs-dir", "runs"])
    assert result.exit_code == 2 and result.output.startswith("nntui: ./presets/broken.toml: not valid TOML")
    assert not Path("runs").exists()


def test_unknown_names_list_every_preset_and_paths_still_work(user_dirs, tmp_path):
    local, _ = user_dirs
    write_preset(local, "mine", "", 3)
    with pytest.raises(ConfigError, match="unknown preset 'nope'; presets: mine, .*digits-mlp"):
        preset_path("nope")
    elsewhere = write_preset(tmp_path, "elsewhere", "", 4)
    assert load_config(str(elsewhere)).model.hidden == [4]


def test_a_deleted_current_directory_has_no_presets_and_is_no_error(tmp_path, monkeypatch):
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    gone.rmdir()
    assert sorted(preset.name for preset in preset_files()) == sorted(BUILTINS)


def test_overrides_that_only_fit_together_apply_in_any_order(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,y\n1,2\n", encoding="utf-8")
    for overrides in (["data.dataset=csv", f"data.path={path}"], [f"data.path={path}", "data.dataset=csv"]):
        assert load_config("diabetes-mlp", overrides).data.path == str(path)


def test_run_finds_a_user_preset_and_notes_that_it_shadows_a_built_in(tmp_path):
    (tmp_path / "presets").mkdir()
    write_preset(tmp_path / "presets", "digits-mlp", "my own digits", 6)
    result = run_cli("run", "digits-mlp", "--headless", "--epochs", "1", "--name", "mine",
                     "--set", "train.log_interval_s=0", cwd=tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path / "cfg")})
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == ("nntui: note: preset digits-mlp is ./presets/digits-mlp.toml, "
                                             "shadowing the built-in one")
    config = (tmp_path / "runs" / "mine" / "config.toml").read_text()
    assert 'description = "my own digits"' in config and "hidden = [\n    6,\n]" in config


# --------------------------------------------------------------------------- packaging


def _source_copy(tmp_path: Path) -> Path:
    """The files a build reads, copied, so that building leaves nothing in the checkout."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("nntui", "presets"):
        shutil.copytree(ROOT / folder, source / folder, ignore=ignore)
    return source


def _pip(*args: str, python: str = sys.executable, cwd: Path) -> None:
    result = subprocess.run([python, "-m", "pip", *args, "--no-deps", "--no-build-isolation", "-q"],
                            cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def _listed_presets(python: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The built-in preset folder and names that `python` finds, from outside the checkout."""
    code = "from nntui.config import builtin_preset_dir as d, builtin_presets as p; print(d()); print(*p())"
    return subprocess.run([python, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": "", **(env or {})})


def test_a_wheel_built_from_the_repo_holds_every_preset_and_module_and_finds_them_installed(tmp_path):
    source = _source_copy(tmp_path)
    _pip("wheel", ".", "-w", str(tmp_path / "dist"), cwd=source)
    (wheel,) = (tmp_path / "dist").glob("nntui-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"nntui/presets/{name}.toml" for name in BUILTINS} <= names
    modules = {str(path.relative_to(ROOT)) for path in (ROOT / "nntui").rglob("*.py")}
    styles = {str(path.relative_to(ROOT)) for path in (ROOT / "nntui").rglob("*.tcss")}
    assert modules | styles <= names, sorted((modules | styles) - names)
    target = tmp_path / "installed"
    _pip("install", "--target", str(target), str(wheel), cwd=tmp_path)
    found = _listed_presets(sys.executable, tmp_path, {"PYTHONPATH": str(target)})
    assert found.stdout.split("\n")[0] == str(target / "nntui" / "presets"), found.stderr
    assert sorted(found.stdout.split("\n")[1].split()) == sorted(BUILTINS)


def test_an_editable_install_finds_the_top_level_presets(tmp_path):
    source = _source_copy(tmp_path)
    venv = tmp_path / "venv"
    # the venv sees this interpreter's packages (pip, setuptools, torch...): nothing is downloaded
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                   check=True, timeout=120)
    python = str(venv / "bin" / "python")
    _pip("install", "-e", ".", python=python, cwd=source)
    found = _listed_presets(python, tmp_path)
    assert found.stdout.split("\n")[0] == str(source / "presets"), found.stdout + found.stderr
    assert sorted(found.stdout.split("\n")[1].split()) == sorted(BUILTINS)
