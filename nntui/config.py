"""Run configuration: the preset schema, loading presets and applying overrides.

This module never imports torch, textual or rich: `nntui presets` and the CLI's
validation must answer instantly.
"""

from __future__ import annotations

import sys
from typing import Any, get_origin

from pydantic import BaseModel, ValidationError, model_validator

# re-exported: the CLI, the setup screen and tests import the preset lookup from here
from nntui.preset_lookup import (  # noqa: F401
    builtin_preset_dir,
    builtin_presets,
    find_preset,
    preset_files,
    preset_path,
    read_preset,
    read_preset_file,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from nntui.config_sections import (  # noqa: F401  (re-exported: the sections and types live there)
    CLASSIFICATION_DATASETS,
    DEVICE_PATTERN,
    IMAGE_DATASETS,
    OPTIMIZERS,
    PENALTIES,
    REGRESSION_DATASETS,
    SCHEDULES,
    Activation,
    AugmentConfig,
    DataConfig,
    Dataset,
    EarlyStoppingConfig,
    Init,
    ModelConfig,
    ModelKind,
    Monitor,
    OptimConfig,
    OptimizerName,
    Penalty,
    RegularizationConfig,
    ScheduleConfig,
    ScheduleName,
    Task,
    TrainConfig,
    _Section,
)


class ConfigError(ValueError):
    """A bad preset or override. `str(error)` is one line meant for the user."""


class RunConfig(_Section):
    """A fully resolved run configuration (a preset with every default filled in)."""

    name: str = "custom"
    description: str = ""
    task: Task = "classification"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig()
    regularization: RegularizationConfig = RegularizationConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()
    train: TrainConfig = TrainConfig()

    @model_validator(mode="after")
    def _consistent(self) -> "RunConfig":
        """Checks across sections: what the task, the data set and the monitors need of each other."""
        self._check_monitors()
        self._check_factories()
        dataset, regression = self.data.dataset, self.task == "regression"
        if regression and dataset in CLASSIFICATION_DATASETS:
            raise ValueError(f"task: {dataset} is a classification data set (its targets are classes)")
        if not regression and dataset in REGRESSION_DATASETS:
            raise ValueError(f"task: {dataset} is a regression data set (its target is a number)")
        # custom data may be images: what it is shows only when it is loaded
        maybe_images = dataset in IMAGE_DATASETS or dataset == "custom"
        if self.model.kind not in ("mlp", "custom") and not maybe_images:
            raise ValueError(f"model.kind: {self.model.kind} needs images; {dataset} is tabular (use mlp)")
        if self.data.augment.active and not maybe_images:
            raise ValueError(f"data.augment: {dataset} is not an image data set; "
                             f"augmentation works with {', '.join(IMAGE_DATASETS)}")
        if dataset in ("csv", "image-folder") and not self.data.path:
            raise ValueError(f"data.path: {dataset} needs a path")
        return self

    def _check_factories(self) -> None:
        """`custom` needs a factory, and a factory (or its args) is only for `custom`."""
        sections = (("model", self.model, self.model.kind == "custom", 'model.kind = "custom"', "model.py:build"),
                    ("data", self.data, self.data.dataset == "custom", 'data.dataset = "custom"', "data.py:load"))
        for prefix, section, custom, kind, example in sections:
            if custom and not section.factory:
                raise ValueError(f'{prefix}.factory: {kind} needs a factory, e.g. "{example}" '
                                 f'(a file relative to the preset) or "package.module:callable"')
            for key, value in (("factory", section.factory), ("args", section.args)):
                if value and not custom:
                    raise ValueError(f"{prefix}.{key}: is used only with {kind}")

    def _check_monitors(self) -> None:
        """A monitor must exist for the task, and a validation metric needs a validation split."""
        regression = self.task == "regression"
        for key, monitor in (("early_stopping.monitor", self.early_stopping.monitor),
                             ("schedule.monitor", self.schedule.monitor)):
            if regression and monitor == "val_acc":
                raise ValueError(f"{key}: val_acc needs task classification")
            if not regression and monitor in ("val_mae", "val_r2"):
                raise ValueError(f"{key}: {monitor} needs task regression")
        for key, monitor in self.active_monitors():
            if monitor.startswith("val_") and self.data.val_split == 0:
                raise ValueError(f"{key}: {monitor} needs a validation split, and data.val_split is 0 "
                                 f"(set data.val_split, or monitor train_loss)")

    def active_monitors(self) -> list[tuple[str, str]]:
        """(key, monitored metric) of early stopping and the plateau schedule, when they are on."""
        active = []
        if self.early_stopping.enabled:
            active.append(("early_stopping.monitor", self.early_stopping.monitor))
        if self.schedule.name == "plateau":
            active.append(("schedule.monitor", self.schedule.monitor))
        return active

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_toml(self) -> str:
        import tomli_w

        return tomli_w.dumps(self.to_dict())


# --------------------------------------------------------------------------- presets with overrides


OptionOverride = tuple[str, str, Any]  # (an option as the user typed it, e.g. "--lr"; the key it sets; its value)


def load_config(name_or_path: str, overrides: list[str] | tuple[str, ...] = (),
                options: list[OptionOverride] | tuple[OptionOverride, ...] = ()) -> RunConfig:
    """Load and validate a preset, then apply `KEY=VALUE` overrides and then `options`.

    The result is validated once, after every change, so overrides that only fit together
    (`data.dataset=csv` and `data.path=...`) can be given in any order. A problem caused by
    an option names that option (`--lr: ...`), one caused by an override names `--set`.
    """
    raw, label = read_preset(name_or_path)
    return apply_overrides(raw, label, overrides, options)


def apply_overrides(raw: dict[str, Any], label: str, overrides: list[str] | tuple[str, ...] = (),
                    options: list[OptionOverride] | tuple[OptionOverride, ...] = ()) -> RunConfig:
    """Validate the configuration `raw` (named `label` in errors), then change and validate it as
    `load_config` does; `raw` is changed in place."""
    validate(raw, label)
    changed: list[tuple[str, str]] = []  # (the option that changed it, key), in order
    for override in overrides:
        key, value = parse_override(override)
        set_dotted(raw, key, value, label="--set")
        changed.append(("--set", key))
    for flag, key, value in options:
        set_dotted(raw, key, value, label=flag)
        changed.append((flag, key))
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_blame(error, changed)) from None


def _blame(error: ValidationError, changed: list[tuple[str, str]]) -> str:
    """`error` as one line that starts with the option that caused it (the preset alone was valid)."""
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    if not key:  # a whole-config check: its message starts with the key it is about
        key = first["msg"].removeprefix("Value error, ").partition(":")[0]
    flag = next((flag for flag, changed_key in reversed(changed) if changed_key == key), None)
    if flag is None:  # a mismatch between keys: blame the overrides, or else the last option
        overrides = not changed or any(flag == "--set" for flag, _ in changed)
        flag = "--set" if overrides else changed[-1][0]
    message = describe_validation_error(error)
    if flag != "--set" and first["loc"]:  # the option names the key already: `--lr: must be > 0`
        message = message.removeprefix(f"{key}: ")
    return f"{flag}: {message}"


def validate(raw: dict[str, Any], label: str) -> RunConfig:
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(f"{label}: {describe_validation_error(error)}") from None


def describe_validation_error(error: ValidationError) -> str:
    """The first problem of a pydantic error as `key: what is allowed (got value)`."""
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    kind = first["type"]
    if kind == "extra_forbidden":
        return f"{key}: unknown key; allowed here: {', '.join(_allowed_keys(first['loc']))}"
    message = first["msg"].removeprefix("Value error, ")
    if not key:  # a whole-config check: the message names its key
        return message
    got = first.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"{key}: {message}{shown}"


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = RunConfig
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            break
        model = annotation
    return list(model.model_fields)


def parse_override(text: str) -> tuple[str, Any]:
    """Split `KEY=VALUE`; VALUE is read as a TOML value, or else taken as a string."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. optim.lr=3e-4")
    try:
        return key, tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return key, value.strip()


def set_dotted(raw: dict[str, Any], key: str, value: Any, label: str = "--set") -> None:
    """Set `a.b.c` in a nested dict, refusing keys the schema does not have."""
    parts = key.split(".")
    model: type[BaseModel] | None = RunConfig
    table = raw
    for index, part in enumerate(parts):
        if model is None or part not in model.model_fields:
            where = ".".join(parts[:index]) or "the top level"
            allowed = ", ".join(model.model_fields) if model else "nothing (not a table)"
            raise ConfigError(f"{label} {key}: unknown key {part!r} in {where}; allowed: {allowed}")
        annotation = model.model_fields[part].annotation
        if get_origin(annotation) is dict and index < len(parts) - 1:  # a free table (model.args): any keys
            _set_free(table.setdefault(part, {}), parts[index + 1:], value, f"{label} {key}")
            return
        nested = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
        if index == len(parts) - 1:
            if nested is not None:
                raise ConfigError(f"{label} {key}: is a table; set one of its keys, e.g. {key}.{next(iter(nested.model_fields))}")
            table[part] = value
            return
        table = table.setdefault(part, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{label} {key}: {part} is not a table")
        model = nested


def _set_free(table: Any, parts: list[str], value: Any, label: str) -> None:
    """Set `parts` (a.b) in a table that takes any keys, as TOML's dotted keys would."""
    for part in parts[:-1]:
        if not isinstance(table, dict):
            break
        table = table.setdefault(part, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{label}: {'.'.join(parts[:-1]) or 'it'} is not a table")
    table[parts[-1]] = value


def config_from_dict(data: dict[str, Any], label: str = "config") -> RunConfig:
    """Validate a resolved configuration read back from a run directory."""
    return validate(data, label)
