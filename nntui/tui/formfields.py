"""The setup form's fields: what they set, when they apply, how they are checked. No textual
widgets here, only Textual validators (`textual.validation` is light and has no widget imports)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Callable, get_args

from textual.validation import ValidationResult, Validator

from nntui.config import OPTIMIZERS, PENALTIES, SCHEDULES, ConfigError, RunConfig, ScheduleConfig, set_dotted, validate
from nntui.config_sections import OPTIM_IMPLS, PRECISIONS, AugmentConfig
from nntui.engine.control import CommandError, parse_lr

DEVICES = ("auto", "cpu", "cuda", "mps")
ON_OFF = ("on", "off")
AUGMENT_PLACES: tuple[str, ...] = get_args(AugmentConfig.model_fields["on"].annotation)


class LearningRate(Validator):
    """The same rule as `nntui ctl RUN lr VALUE`: finite, > 0 and <= 10."""

    def validate(self, value: str) -> ValidationResult:
        try:
            parse_lr(value.strip())
        except CommandError as error:
            return self.failure(str(error))
        return self.success()


class FloatRange(Validator):
    """A finite number in [low, high], or [low, high) when `high_open`."""

    def __init__(self, low: float, high: float, high_open: bool = False) -> None:
        super().__init__()
        self.low, self.high, self.high_open = low, high, high_open

    def validate(self, value: str) -> ValidationResult:
        try:
            number = float(value.strip())
        except ValueError:
            return self.failure(f"must be a number (got {value!r})")
        too_high = number >= self.high if self.high_open else number > self.high
        if not math.isfinite(number) or number < self.low or too_high:
            bracket = ")" if self.high_open else "]"
            return self.failure(f"must be a finite number in [{self.low:g}, {self.high:g}{bracket} (got {value!r})")
        return self.success()


class IntRange(Validator):
    """A whole number in [low, high]."""

    def __init__(self, low: int, high: int) -> None:
        super().__init__()
        self.low, self.high = low, high

    def validate(self, value: str) -> ValidationResult:
        try:
            number = int(value.strip())
        except ValueError:
            return self.failure(f"must be a whole number (got {value!r})")
        if not self.low <= number <= self.high:
            return self.failure(f"must be between {self.low:,} and {self.high:,} (got {number})")
        return self.success()


class BetaPair(Validator):
    """Adam's two betas, `0.9, 0.999`: each in [0, 1)."""

    def validate(self, value: str) -> ValidationResult:
        parts = value.replace(",", " ").split()
        try:
            betas = [float(part) for part in parts]
        except ValueError:
            betas = []
        if len(betas) != 2 or not all(0 <= beta < 1 for beta in betas):
            return self.failure(f"must be two numbers in [0, 1), e.g. 0.9, 0.999 (got {value!r})")
        return self.success()


@dataclass(frozen=True)
class FormField:
    """One field of the setup form: the dotted config key it sets, and when it applies.

    `when` is (the key of a select field, the values of it for which this field applies): the
    form shows the field only then, and a hidden field leaves the configuration as it was.
    `when_config` tests what the form does not set, in the configuration it edits (whether the
    preset augments its images): the form shows the field only when it holds.
    An `optional` field may be left empty, which stands for `empty` (shown as `placeholder`).
    A select with `open_ended` takes other values the configuration accepts too (cuda:1).
    """

    key: str
    label: str
    kind: str  # select, float, int, switch, pair
    options: tuple[str, ...] = ()
    validator: Validator | None = None
    when: tuple[str, tuple[str, ...]] | None = None
    optional: bool = False
    empty: Any = None
    placeholder: str = ""
    open_ended: bool = False
    when_config: Callable[[RunConfig], bool] | None = None

    @property
    def widget_id(self) -> str:
        return "f-" + self.key.replace(".", "-").replace("_", "-")

    def applies(self, values: dict[str, Any], config: RunConfig | None = None) -> bool:
        """Whether the field applies with these form values (its select has one of its values)
        and, when `config` is given, to that configuration (`when_config`)."""
        if self.when is not None and values.get(self.when[0]) not in self.when[1]:
            return False
        return config is None or self.when_config is None or self.when_config(config)

    def parse(self, value: Any) -> Any:
        """The config value of the widget's value (already validated)."""
        text = str(value).strip()
        if self.optional and not text:
            return self.empty
        if self.kind == "switch":
            return value == "on"
        if self.kind == "int":
            return int(text)
        if self.kind == "pair":
            return tuple(float(part) for part in text.replace(",", " ").split())
        if self.kind == "float":
            return parse_lr(text) if isinstance(self.validator, LearningRate) else float(text)
        return value

    def text_of(self, config: RunConfig) -> str:
        """The widget's value for a config."""
        value: Any = config
        for part in self.key.split("."):
            value = getattr(value, part)
        if self.kind == "switch":
            return "on" if value else "off"
        if value is None or (self.optional and value == self.empty):
            return ""
        if self.kind == "pair":
            return ", ".join(f"{item:g}" for item in value)
        if isinstance(value, float):
            return f"{value:g}"
        return str(value)


def _schedules(*names: str) -> tuple[str, tuple[str, ...]]:
    return ("schedule.name", names)


def _augments(config: RunConfig) -> bool:
    return config.data.augment.active


WARMUP_SCHEDULES = tuple(name for name in SCHEDULES if name != "onecycle")  # onecycle warms up itself
EARLY_STOP_ON = ("early_stopping.enabled", ("on",))

OPTIMIZER_FIELDS = (
    FormField("optim.name", "optimizer", "select", OPTIMIZERS),
    FormField("optim.lr", "learn rate", "float", validator=LearningRate()),
    FormField("optim.momentum", "momentum", "float", validator=FloatRange(0, 1, high_open=True),
              when=("optim.name", ("momentum", "nesterov"))),
    FormField("optim.betas", "betas", "pair", validator=BetaPair(), when=("optim.name", ("adam", "adamw"))),
    FormField("optim.eps", "eps", "float", validator=FloatRange(0, 1),
              when=("optim.name", ("adagrad", "rmsprop", "adam", "adamw"))),
    FormField("optim.weight_decay", "weight decay", "float", validator=FloatRange(0, 1)),
    FormField("data.batch_size", "batch size", "int", validator=IntRange(1, 1_000_000)),
    FormField("train.epochs", "epochs", "int", validator=IntRange(1, 1_000_000)),
    FormField("train.device", "device", "select", DEVICES, open_ended=True),
    FormField("optim.impl", "kernels", "select", OPTIM_IMPLS),
    FormField("train.precision", "precision", "select", PRECISIONS),
    FormField("train.compile", "compile", "switch", ON_OFF),
    FormField("data.augment.on", "augment on", "select", AUGMENT_PLACES, when_config=_augments),
)
SCHEDULE_FIELDS = (
    FormField("schedule.name", "schedule", "select", SCHEDULES),
    FormField("schedule.step_size", "step size", "int", validator=IntRange(1, 1_000_000), when=_schedules("step")),
    FormField("schedule.gamma", "gamma", "float", validator=FloatRange(0, 1), when=_schedules("step", "exponential"),
              optional=True, empty=0.0),
    FormField("schedule.factor", "factor", "float", validator=FloatRange(0, 1, high_open=True),
              when=_schedules("plateau")),
    FormField("schedule.patience", "plateau patience", "int", validator=IntRange(0, 10_000),
              when=_schedules("plateau")),
    FormField("schedule.min_delta", "min delta", "float", validator=FloatRange(0, 1e9), when=_schedules("plateau")),
    FormField("schedule.cooldown", "cooldown", "int", validator=IntRange(0, 10_000), when=_schedules("plateau")),
    FormField("schedule.min_lr", "min lr", "float", validator=FloatRange(0, 10), when=_schedules("plateau", "cosine")),
    FormField("schedule.t_max", "T max", "int", validator=IntRange(1, 1_000_000), when=_schedules("cosine"),
              optional=True, empty=0, placeholder="epochs"),
    FormField("schedule.max_lr", "max lr", "float", validator=LearningRate(), when=_schedules("onecycle"),
              optional=True, empty=0.0, placeholder="10 × lr"),
    FormField("schedule.warmup_epochs", "warmup epochs", "int", validator=IntRange(0, 1000),
              when=_schedules(*WARMUP_SCHEDULES)),
)
STOPPING_FIELDS = (
    FormField("regularization.penalty", "penalty", "select", PENALTIES),
    FormField("regularization.alpha", "alpha", "float", validator=FloatRange(0, 10),
              when=("regularization.penalty", tuple(p for p in PENALTIES if p != "none"))),
    FormField("regularization.l1_ratio", "l1 ratio", "float", validator=FloatRange(0, 1),
              when=("regularization.penalty", ("elastic_net",))),
    FormField("model.dropout", "dropout", "float", validator=FloatRange(0, 1, high_open=True)),
    FormField("early_stopping.enabled", "early stop", "switch", ON_OFF),
    FormField("early_stopping.patience", "stop patience", "int", validator=IntRange(0, 100_000), when=EARLY_STOP_ON),
    FormField("early_stopping.restore_best", "keep best", "switch", ON_OFF, when=EARLY_STOP_ON),
    FormField("early_stopping.baseline", "baseline", "float", validator=FloatRange(-1e9, 1e9), when=EARLY_STOP_ON,
              optional=True, empty=None, placeholder="none"),
    FormField("early_stopping.start_from_epoch", "from epoch", "int", validator=IntRange(0, 1_000_000),
              when=EARLY_STOP_ON),
)
# the form's columns: (id, fields), in focus order
COLUMNS = (("optimizer", OPTIMIZER_FIELDS), ("schedule", SCHEDULE_FIELDS), ("stopping", STOPPING_FIELDS))
FIELDS = OPTIMIZER_FIELDS + SCHEDULE_FIELDS + STOPPING_FIELDS
FIELD_BY_KEY = {field.key: field for field in FIELDS}


def default_gamma(schedule: str) -> str:
    """The gamma an empty gamma field stands for with `schedule` ('' when it has none)."""
    gamma = ScheduleConfig(name=schedule).gamma  # type: ignore[arg-type]
    return f"{gamma:g}" if gamma else ""


class FormError(ValueError):
    """A field or the whole config is invalid; the text is one line for the user."""


def check_field(field: FormField, value: Any) -> str:
    """The field's one-line problem, or '' when fine."""
    if field.validator is None:  # a select: the whole config checks an open-ended one's other values
        fine = value in field.options or (field.open_ended and isinstance(value, str))
        return "" if fine else f"choose one of {', '.join(field.options)}"
    if field.optional and not str(value).strip():
        return ""
    result = field.validator.validate(str(value))
    return "" if result.is_valid else result.failure_descriptions[0]


def form_texts(config: RunConfig) -> dict[str, str]:
    """The form's values for a config, by dotted key."""
    return {field.key: field.text_of(config) for field in FIELDS}


def build_config(base_raw: dict[str, Any], values: dict[str, Any]) -> RunConfig:
    """The configuration `base_raw` with the form's values applied, validated as a whole
    (FormError otherwise). The fields that do not apply (hidden) leave `base_raw` as it was.
    A field hidden by `when_config` is written all the same: that tests what the form cannot
    change, so the field still holds the value `base_raw` gives it (written, it changes nothing)."""
    raw = copy.deepcopy(base_raw)
    for key, value in values.items():
        field = FIELD_BY_KEY[key]
        if not field.applies(values):
            continue
        problem = check_field(field, value)
        if problem:
            raise FormError(f"{field.label}: {problem}")
        try:
            set_dotted(raw, key, field.parse(value), label="form")
        except ConfigError as error:
            raise FormError(str(error)) from None
    try:
        return validate(raw, "config")
    except ConfigError as error:
        raise FormError(str(error)) from None
