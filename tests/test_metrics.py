"""The metric table: what the schema, the console, the monitor and export derive from it."""

from nntui import metrics
from nntui.config import RunConfig
from nntui.engine.events import EpochEnded
from nntui.tui.formatting import fmt_metric


def test_monitors_are_epoch_metrics_and_the_schema_takes_exactly_them():
    epoch_keys = metrics.keys("epoch")
    assert all(monitor in epoch_keys for monitor in metrics.MONITORS)
    for monitor in metrics.MONITORS:
        task = metrics.metric(monitor).task or "classification"
        assert RunConfig.model_validate({"task": task, "data": {"dataset": "digits" if task == "classification"
                                                                else "diabetes"},
                                         "early_stopping": {"enabled": True, "monitor": monitor}})


def test_every_epoch_metric_is_a_field_of_the_epoch_event():
    fields = set(EpochEnded.__dataclass_fields__)
    assert set(metrics.keys("epoch")) <= fields


def test_task_keys_split_by_task_and_modes_point_the_right_way():
    assert set(metrics.keys("epoch", "classification")) & {"val_mae", "val_r2"} == set()
    assert "val_acc" not in metrics.keys("epoch", "regression")
    assert metrics.better_mode("val_acc") == metrics.better_mode("val_r2") == "max"
    assert metrics.better_mode("val_loss") == metrics.better_mode("val_mae") == "min"


def test_a_users_own_metric_reads_as_a_lower_is_better_value():
    own = metrics.metric("val_bleu_loss")
    assert (own.mode, own.format, own.label) == ("min", "value", "val bleu loss")
    assert fmt_metric("val_acc", 0.9871) == "98.71%"
    assert fmt_metric("val_bleu_loss", 0.5) == "0.5"
