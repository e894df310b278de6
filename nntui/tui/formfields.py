"""The setup form's fields: what they set, how they are checked. No textual widgets here,
only Textual validators (`textual.validation` is light and has no widget imports)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

from textual.validation import ValidationResult, Validator

from nntui.config import OPTIMIZERS, PENALTIES, SCHEDULES, ConfigError, RunConfig, set_dotted, validate
from nntui.engine.control import CommandError, parse_lr

DEVICES = ("auto", "cpu", "cuda", "mps")
ON_OFF = ("on", "off")


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


class OptionalFloat(FloatRange):
    """Empty (none), or a finite number in [low, high]."""

    def validate(self, value: str) -> ValidationResult:
        return self.success() if not value.strip() else super().validate(value)


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


@dataclass(frozen=True)
class FormField:
    """One field of the setup form: the dotted config key it sets."""

    key: str
    label: str
    kind: str  # select, float, int, switch; a float with an OptionalFloat validator may be empty (none)
    options: tuple[str, ...] = ()
    validator: Validator | None = None

    @property
    def widget_id(self) -> str:
        return "f-" + self.key.replace(".", "-").replace("_", "-")

    def parse(self, value: Any) -> Any:
        """The config value of the widget's value (already validated)."""
        if self.kind == "switch":
            return value == "on"
        if self.kind == "int":
            return int(str(value).strip())
        if self.kind == "float":
            if isinstance(self.validator, OptionalFloat) and not str(value).strip():
                return None
            return parse_lr(value) if isinstance(self.validator, LearningRate) else float(str(value).strip())
        return value

    def text_of(self, config: RunConfig) -> str:
        """The widget's value for a config."""
        value: Any = config
        for part in self.key.split("."):
            value = getattr(value, part)
        if self.kind == "switch":
            return "on" if value else "off"
        if value is None:
            return ""
        if isinstance(value, float):
            return f"{value:g}"
        return str(value)


FIELDS = (  # three columns of six, in focus order
    FormField("optim.name", "optimizer", "select", OPTIMIZERS),
    FormField("optim.lr", "learn rate", "float", validator=LearningRate()),
    FormField("data.batch_size", "batch size", "int", validator=IntRange(1, 1_000_000)),
    FormField("train.epochs", "epochs", "int", validator=IntRange(1, 1_000_000)),
    FormField("schedule.name", "schedule", "select", SCHEDULES),
    FormField("train.device", "device", "select", DEVICES),
    FormField("regularization.penalty", "penalty", "select", PENALTIES),
    FormField("regularization.alpha", "alpha", "float", validator=FloatRange(0, 10)),
    FormField("regularization.l1_ratio", "l1 ratio", "float", validator=FloatRange(0, 1)),
    FormField("model.dropout", "dropout", "float", validator=FloatRange(0, 1, high_open=True)),
    FormField("early_stopping.enabled", "early stop", "switch", ON_OFF),
    FormField("early_stopping.patience", "patience", "int", validator=IntRange(0, 100_000)),
    FormField("schedule.min_lr", "min lr", "float", validator=FloatRange(0, 10)),
    FormField("schedule.cooldown", "cooldown", "int", validator=IntRange(0, 10_000)),
    FormField("schedule.min_delta", "plateau Δ", "float", validator=FloatRange(0, 1e9)),
    FormField("early_stopping.restore_best", "keep best", "switch", ON_OFF),
    FormField("early_stopping.baseline", "baseline", "float", validator=OptionalFloat(-1e9, 1e9)),
    FormField("early_stopping.start_from_epoch", "from epoch", "int", validator=IntRange(0, 1_000_000)),
)
COLUMNS = (FIELDS[:6], FIELDS[6:12], FIELDS[12:])
FIELD_BY_KEY = {field.key: field for field in FIELDS}


class FormError(ValueError):
    """A field or the whole config is invalid; the text is one line for the user."""


def check_field(field: FormField, value: Any) -> str:
    """The field's one-line problem, or '' when fine."""
    if field.validator is None:
        return "" if value in field.options else f"choose one of {', '.join(field.options)}"
    result = field.validator.validate(str(value))
    return "" if result.is_valid else result.failure_descriptions[0]


def build_config(preset_raw: dict[str, Any], values: dict[str, Any]) -> RunConfig:
    """The preset with the form's values applied, validated as a whole (FormError otherwise)."""
    raw = copy.deepcopy(preset_raw)
    for key, value in values.items():
        field = FIELD_BY_KEY[key]
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
