"""Run configuration: the preset schema, loading presets and applying overrides.

This module never imports torch, textual or rich: `nntui presets` and the CLI's
validation must answer instantly.
"""

from __future__ import annotations

import math
import re
import sys
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer, model_validator

from nntui.engine.early_stopping import default_mode

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

Task = Literal["classification", "regression"]
Dataset = Literal["digits", "diabetes", "mnist", "fashion-mnist", "cifar10", "image-folder", "csv"]
ModelKind = Literal["mlp", "cnn", "vgg", "resnet18"]
Activation = Literal["relu", "leaky_relu", "elu", "tanh", "sigmoid", "gelu"]
Init = Literal["default", "uniform", "normal", "xavier", "kaiming"]
OptimizerName = Literal["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"]
Penalty = Literal["none", "l1", "l2", "elastic_net"]
ScheduleName = Literal["constant", "step", "exponential", "plateau", "cosine", "onecycle"]
Monitor = Literal["val_loss", "val_acc", "val_mae", "val_r2", "train_loss"]
IMAGE_DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "image-folder")
CLASSIFICATION_DATASETS = IMAGE_DATASETS  # data sets whose targets are classes
REGRESSION_DATASETS = ("diabetes",)  # data sets whose target is a number

OPTIMIZERS: tuple[str, ...] = OptimizerName.__args__  # type: ignore[attr-defined]
PENALTIES: tuple[str, ...] = Penalty.__args__  # type: ignore[attr-defined]
SCHEDULES: tuple[str, ...] = ScheduleName.__args__  # type: ignore[attr-defined]
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")


class ConfigError(ValueError):
    """A bad preset or override. `str(error)` is one line meant for the user."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _finite(cls, value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class AugmentConfig(_Section):
    """Random image transforms applied to the training split only (torchvision v2)."""

    rotation: float = Field(0.0, ge=0, le=180, description="max rotation, degrees")
    translate: float = Field(0.0, ge=0, lt=1, description="max shift, fraction of width/height")
    hflip: bool = Field(False, description="random horizontal flip")
    shear: float = Field(0.0, ge=0, lt=90, description="max shear, degrees")
    zoom: tuple[float, float] = Field((1.0, 1.0), description="scale range, e.g. [0.9, 1.2]")

    @field_validator("zoom")
    @classmethod
    def _zoom_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not (0 < low <= high <= 10):
            raise ValueError("must be [low, high] with 0 < low <= high <= 10")
        return value

    @property
    def active(self) -> bool:
        return bool(self.rotation or self.translate or self.hflip or self.shear or self.zoom != (1.0, 1.0))


class DataConfig(_Section):
    dataset: Dataset = "digits"
    path: str = Field("", description="file or folder for csv and image-folder")
    target: str = Field("", description="csv: the target column (default: the last one)")
    val_split: float = Field(0.2, ge=0, lt=1)
    test_split: float = Field(0.2, ge=0, lt=1, description="for data sets without a test split")
    batch_size: int = Field(64, ge=1, le=1_000_000)
    normalize: Literal["none", "minmax", "zscore"] = "zscore"
    augment: AugmentConfig = AugmentConfig()
    num_workers: int = Field(0, ge=0, le=64, description="DataLoader workers (large data sets)")


class ModelConfig(_Section):
    kind: ModelKind = "mlp"
    hidden: list[int] = Field(default_factory=lambda: [128], description="mlp: layer widths; cnn: channels")
    activation: Activation = "relu"
    dropout: float = Field(0.0, ge=0, lt=1)
    init: Init = "default"
    batch_norm: bool = False

    @field_validator("hidden")
    @classmethod
    def _widths(cls, value: list[int]) -> list[int]:
        if any(width < 1 or width > 65536 for width in value):
            raise ValueError("widths must be between 1 and 65536")
        return value


class OptimConfig(_Section):
    name: OptimizerName = "adam"
    lr: float = Field(1e-3, gt=0, le=10)
    momentum: float = Field(0.9, ge=0, lt=1, description="momentum and nesterov")
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0, le=1)
    weight_decay: float = Field(0.0, ge=0, le=1, description="torch.optim's own decay")

    @field_validator("betas")
    @classmethod
    def _betas(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= beta < 1 for beta in value):
            raise ValueError("both betas must be in [0, 1)")
        return value


class RegularizationConfig(_Section):
    """Penalties added to the loss over the weights, named as in scikit-learn's SGDClassifier."""

    penalty: Penalty = "none"
    alpha: float = Field(1e-4, ge=0, le=10)
    l1_ratio: float = Field(0.15, ge=0, le=1)


class ScheduleConfig(_Section):
    name: ScheduleName = "constant"
    step_size: int = Field(10, ge=1, description="step: epochs between cuts")
    gamma: float = Field(0.0, ge=0, le=1, description="step/exponential factor; 0 picks 0.1 / 0.95")
    factor: float = Field(0.1, gt=0, lt=1, description="plateau: LR multiplier")
    patience: int = Field(10, ge=0, le=10_000, description="plateau: epochs without improvement")
    min_delta: float = Field(1e-4, ge=0, description="plateau: absolute improvement that counts")
    min_lr: float = Field(0.0, ge=0, description="plateau and cosine: the LR is never cut below it")
    cooldown: int = Field(0, ge=0, le=10_000, description="plateau: epochs after a cut before waiting again")
    monitor: Monitor = "val_loss"
    t_max: int = Field(0, ge=0, description="cosine: epochs per half period; 0 means train.epochs")
    max_lr: float = Field(0.0, ge=0, description="onecycle: peak LR; 0 means 10 x optim.lr")
    warmup_epochs: int = Field(0, ge=0, le=1000)

    @model_validator(mode="after")
    def _resolve_gamma(self) -> "ScheduleConfig":
        if self.gamma == 0.0 and self.name in ("step", "exponential"):
            object.__setattr__(self, "gamma", 0.1 if self.name == "step" else 0.95)
        return self


class EarlyStoppingConfig(_Section):
    """Keras EarlyStopping semantics."""

    enabled: bool = False
    monitor: Monitor = "val_loss"
    mode: Literal["auto", "min", "max"] = "auto"
    patience: int = Field(5, ge=0, le=100_000)
    min_delta: float = Field(0.0, ge=0)
    restore_best: bool = Field(False, description="test with and keep the best epoch's weights")
    baseline: Optional[float] = Field(None, description="patience restarts only on beating it too")
    start_from_epoch: int = Field(0, ge=0, le=1_000_000, description="epochs not looked at (warm-up)")

    @model_serializer(mode="wrap")
    def _leave_out_no_baseline(self, handler: Any) -> dict[str, Any]:
        """TOML has no null: no baseline is a missing key."""
        data = handler(self)
        if data.get("baseline") is None:
            data.pop("baseline", None)
        return data

    @model_validator(mode="after")
    def _resolve_mode(self) -> "EarlyStoppingConfig":
        if self.mode == "auto":
            mode = default_mode(self.monitor)
            object.__setattr__(self, "mode", mode)
        return self


class TrainConfig(_Section):
    epochs: int = Field(20, ge=1, le=1_000_000)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    device: str = "auto"
    grad_clip: float = Field(0.0, ge=0, description="max global grad norm; 0 turns clipping off")
    log_every: int = Field(10, ge=1, le=1_000_000, description="steps between step records, at least")
    log_interval_s: float = Field(0.2, ge=0, le=3600, description="seconds between step records, at least")
    checkpoint_every_s: float = Field(30.0, ge=0, description="least seconds between epoch-end checkpoints")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not DEVICE_PATTERN.match(value):
            raise ValueError("must be auto, cpu, cuda, cuda:N or mps")
        return value


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
        dataset, regression = self.data.dataset, self.task == "regression"
        if regression and dataset in CLASSIFICATION_DATASETS:
            raise ValueError(f"task: {dataset} is a classification data set (its targets are classes)")
        if not regression and dataset in REGRESSION_DATASETS:
            raise ValueError(f"task: {dataset} is a regression data set (its target is a number)")
        if self.model.kind != "mlp" and dataset not in IMAGE_DATASETS:
            raise ValueError(f"model.kind: {self.model.kind} needs images; {dataset} is tabular (use mlp)")
        if self.data.augment.active and dataset not in IMAGE_DATASETS:
            raise ValueError(f"data.augment: {dataset} is not an image data set; "
                             f"augmentation works with {', '.join(IMAGE_DATASETS)}")
        if dataset in ("csv", "image-folder") and not self.data.path:
            raise ValueError(f"data.path: {dataset} needs a path")
        return self

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


def config_from_dict(data: dict[str, Any], label: str = "config") -> RunConfig:
    """Validate a resolved configuration read back from a run directory."""
    return validate(data, label)
