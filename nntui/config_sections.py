"""The preset schema's sections: one pydantic model per TOML table, and the value types they take.

Torch-free, like `nntui.config`, which assembles them into `RunConfig` and re-exports them.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

from nntui import metrics
from nntui.engine.early_stopping import default_mode

Task = Literal["classification", "regression"]
Dataset = Literal["digits", "diabetes", "mnist", "fashion-mnist", "cifar10", "image-folder", "csv", "custom"]
ModelKind = Literal["mlp", "cnn", "vgg", "resnet18", "custom"]
Activation = Literal["relu", "leaky_relu", "elu", "tanh", "sigmoid", "gelu"]
Init = Literal["default", "uniform", "normal", "xavier", "kaiming"]
OptimizerName = Literal["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"]
Penalty = Literal["none", "l1", "l2", "elastic_net"]
OptimImpl = Literal["auto", "fused", "foreach", "for_loop"]
Precision = Literal["32", "bf16", "16-mixed"]
ScheduleName = Literal["constant", "step", "exponential", "plateau", "cosine", "onecycle"]
Monitor = Literal[metrics.MONITORS]  # type: ignore[valid-type]
IMAGE_DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "image-folder")
CLASSIFICATION_DATASETS = IMAGE_DATASETS  # data sets whose targets are classes
REGRESSION_DATASETS = ("diabetes",)  # data sets whose target is a number

OPTIMIZERS: tuple[str, ...] = OptimizerName.__args__  # type: ignore[attr-defined]
PENALTIES: tuple[str, ...] = Penalty.__args__  # type: ignore[attr-defined]
SCHEDULES: tuple[str, ...] = ScheduleName.__args__  # type: ignore[attr-defined]
OPTIM_IMPLS: tuple[str, ...] = OptimImpl.__args__  # type: ignore[attr-defined]
PRECISIONS: tuple[str, ...] = Precision.__args__  # type: ignore[attr-defined]
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")
# "package.module:callable" or "path/to/file.py:callable"; the callable may be an attribute path (Class.create)
FACTORY_PATTERN = re.compile(r"^(?:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*|.+\.py):[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")
FACTORY_FORMAT = '"package.module:callable" or "path/to/file.py:callable"'


def factory_file(spec: str) -> Path | None:
    """The file a factory `spec` names (`path/to/file.py:callable`), or None for a module path."""
    target = spec.rpartition(":")[0]
    return Path(target).expanduser() if target.endswith(".py") else None


def resolve_factory(spec: str, base: Path) -> str:
    """`spec` with a relative file made absolute against `base`: the run directory's config.toml
    must name the same file wherever `--resume`, `--fork` or the app read it from."""
    path = factory_file(spec)
    if path is None or path.is_absolute():
        return spec
    return f"{(base / path).absolute()}:{spec.rpartition(':')[2]}"


def _check_factory(value: str) -> str:
    """A factory spec as the configuration keeps it: well-formed, a file's path absolute (a path
    left relative, by `--set` or a built-in preset, is taken from the current directory)."""
    value = value.strip()
    if not value:
        return value
    if not FACTORY_PATTERN.match(value):
        raise ValueError(f"must be {FACTORY_FORMAT}")
    return resolve_factory(value, Path.cwd())


FactorySpec = Annotated[str, AfterValidator(_check_factory)]


def _leave_out_unused_factory(data: dict[str, Any]) -> dict[str, Any]:
    """A section without a factory writes no `factory` and `args` keys (the built-in kinds' TOML as before)."""
    if not data.get("factory"):
        data.pop("factory", None)
        if not data.get("args"):
            data.pop("args", None)
    return data


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
    on: Literal["auto", "device", "workers"] = Field(
        "auto", description="where: whole batches on the training device, or per sample in DataLoader "
                            "workers; auto: the device when the split fits (image folders: workers)")

    @field_validator("zoom")
    @classmethod
    def _zoom_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not (0 < low <= high <= 10):
            raise ValueError("must be [low, high] with 0 < low <= high <= 10")
        return value

    @property
    def warps(self) -> bool:
        """Whether an affine transform (rotation, translation, shear or zoom) is on."""
        return bool(self.rotation or self.translate or self.shear or tuple(self.zoom) != (1.0, 1.0))

    @property
    def active(self) -> bool:
        return self.warps or self.hflip


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
    factory: FactorySpec = Field("", description=f"custom: {FACTORY_FORMAT} returning the splits")
    args: dict[str, Any] = Field(default_factory=dict, description="custom: keyword arguments of the factory")

    @model_serializer(mode="wrap")
    def _leave_out_no_factory(self, handler: Any) -> dict[str, Any]:
        return _leave_out_unused_factory(handler(self))


class ModelConfig(_Section):
    kind: ModelKind = "mlp"
    hidden: list[int] = Field(default_factory=lambda: [128], description="mlp: layer widths; cnn: channels")
    activation: Activation = "relu"
    dropout: float = Field(0.0, ge=0, lt=1)
    init: Init = "default"
    batch_norm: bool = False
    factory: FactorySpec = Field("", description=f"custom: {FACTORY_FORMAT} returning an nn.Module")
    args: dict[str, Any] = Field(default_factory=dict, description="custom: keyword arguments of the factory")

    @model_serializer(mode="wrap")
    def _leave_out_no_factory(self, handler: Any) -> dict[str, Any]:
        return _leave_out_unused_factory(handler(self))

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
    impl: OptimImpl = Field("auto", description="auto: fused where torch has it for the optimizer and device, else foreach")

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
    precision: Precision = Field("32", description="32, bf16 (autocast) or 16-mixed (autocast, gradient scaler; GPU)")
    compile: bool = Field(False, description="torch.compile the model (needs a C++ compiler on the CPU)")

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_text(cls, value: Any) -> Any:
        """`--set train.precision=32` and `precision = 32` in TOML give a number: the same choice."""
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not DEVICE_PATTERN.match(value):
            raise ValueError("must be auto, cpu, cuda, cuda:N or mps")
        return value
