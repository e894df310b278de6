"""nntui.compare: the settings diff of runs and the summaries of their metrics."""

from __future__ import annotations

import copy
import math
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from nntui.compare import (
    MISSING,
    differing_keys,
    flatten,
    format_setting,
    latest_epochs,
    read_settings,
    settings_diff,
    summarize,
)
from nntui.metrics import better_mode

FIXTURES = Path(__file__).parent / "fixtures" / "runs"

# ---------------------------------------------------------------------------------- settings


def test_flatten_makes_dotted_keys_and_keeps_lists_as_values():
    table = {"task": "classification", "optim": {"name": "adam", "betas": [0.9, 0.999]},
             "data": {"augment": {"zoom": [1.0, 1.0], "hflip": False}}}
    assert flatten(table) == {"task": "classification", "optim.name": "adam", "optim.betas": [0.9, 0.999],
                              "data.augment.zoom": [1.0, 1.0], "data.augment.hflip": False}


def test_only_the_keys_that_differ_are_kept_in_first_seen_order():
    adam = {"optim.name": "adam", "optim.lr": 0.001, "model.hidden": [128, 64], "train.seed": 0}
    sgd = {"optim.name": "sgd", "optim.lr": 0.001, "model.hidden": [64], "train.seed": 0}
    assert differing_keys([adam, sgd]) == ["optim.name", "model.hidden"]
    assert settings_diff({"a": adam, "b": sgd}) == {"optim.name": {"a": "adam", "b": "sgd"},
                                                    "model.hidden": {"a": [128, 64], "b": [64]}}


def test_a_key_one_run_lacks_differs_and_shows_as_missing():
    old = {"optim.lr": 0.01}
    new = {"optim.lr": 0.01, "optim.impl": "auto"}
    assert settings_diff({"old": old, "new": new}) == {"optim.impl": {"old": MISSING, "new": "auto"}}


def test_true_and_one_differ_though_python_says_they_are_equal():
    assert differing_keys([{"k": True}, {"k": 1}]) == ["k"]
    assert differing_keys([{"k": 1}, {"k": 1.0}]) == ["k"]  # TOML tells an integer from a float


def test_one_run_or_none_has_nothing_that_differs():
    assert differing_keys([]) == [] and differing_keys([{"a": 1}]) == []


def test_read_settings_reads_config_toml_as_dotted_keys_without_the_preset_name(tmp_path):
    settings = read_settings(FIXTURES / "digits-mlp-complete")
    assert settings["optim.name"] == "adam" and settings["model.hidden"] == [128, 64]
    assert "name" not in settings and "description" not in settings
    assert read_settings(tmp_path) == {}  # no config.toml: no settings, no error


def test_format_setting_writes_values_as_toml_does():
    assert [format_setting(v) for v in (True, False, 0.001, [128, 64], "adam", 3)] == [
        "true", "false", "0.001", "[128, 64]", "adam", "3"]


scalars = st.one_of(st.booleans(), st.integers(-3, 3), st.sampled_from([0.1, 0.5, 1.0]), st.sampled_from("abc"))
tables = st.recursive(st.dictionaries(st.sampled_from("xyz"), scalars, max_size=3),
                      lambda inner: st.dictionaries(st.sampled_from("xyz"), inner | scalars, max_size=3),
                      max_leaves=8)


@given(st.lists(tables, min_size=2, max_size=5))
def test_a_key_is_kept_exactly_when_its_values_are_not_all_the_same(configs):
    flat = [flatten(config) for config in configs]
    kept = differing_keys(flat)
    every_key = {key for table in flat for key in table}
    assert set(kept) <= every_key and len(kept) == len(set(kept))
    for key in every_key:
        values = [(type(table[key]), table[key]) if key in table else MISSING for table in flat]
        assert (key in kept) == any(value != values[0] for value in values), key
    assert set(differing_keys(flat[::-1])) == set(kept)  # the order of the runs does not matter
    assert differing_keys([flat[0], copy.deepcopy(flat[0])]) == []


# ---------------------------------------------------------------------------------- summaries


def epoch(number: int, **values: float) -> dict:
    return {"event": "epoch", "epoch": number, "step": number * 10, "lr": 0.001, **values}


def by_metric(summaries):
    return {item.metric: item for item in summaries}


def test_the_best_follows_the_metrics_mode_losses_down_accuracy_up():
    records = [epoch(1, train_loss=0.9, val_loss=0.8, train_acc=0.5, val_acc=0.6),
               epoch(2, train_loss=0.5, val_loss=0.4, train_acc=0.7, val_acc=0.9),
               epoch(3, train_loss=0.3, val_loss=0.6, train_acc=0.8, val_acc=0.7)]
    summary = by_metric(summarize(records, "classification"))
    assert list(summary) == ["train_loss", "val_loss", "train_acc", "val_acc"]  # the table's order, no lr
    val_loss, val_acc, train_acc = summary["val_loss"], summary["val_acc"], summary["train_acc"]
    assert better_mode("val_loss") == "min" and better_mode("val_acc") == "max"
    assert (val_loss.best, val_loss.best_epoch, val_loss.final, val_loss.low, val_loss.high) == (0.4, 2, 0.6, 0.4, 0.8)
    assert (val_acc.best, val_acc.best_epoch, val_acc.final, val_acc.low, val_acc.high) == (0.9, 2, 0.7, 0.6, 0.9)
    assert (train_acc.best, train_acc.best_epoch) == (0.8, 3)


def test_regression_runs_are_summarised_by_mae_and_r2():
    records = [epoch(1, train_loss=9.0, val_loss=8.0, val_mae=2.0, val_r2=0.1),
               epoch(2, train_loss=7.0, val_loss=7.5, val_mae=2.5, val_r2=0.3)]
    summary = by_metric(summarize(records, "regression"))
    assert list(summary) == ["train_loss", "val_loss", "val_mae", "val_r2"]
    assert (summary["val_mae"].best, summary["val_mae"].best_epoch) == (2.0, 1)
    assert (summary["val_r2"].best, summary["val_r2"].best_epoch) == (0.3, 2)


def test_nan_is_never_the_best_but_can_be_the_final_value():
    records = [epoch(1, train_loss=0.5, val_loss=0.7), epoch(2, train_loss=0.4, val_loss=0.6),
               epoch(3, train_loss=math.nan, val_loss=math.inf)]
    summary = by_metric(summarize(records))
    assert (summary["train_loss"].best, summary["train_loss"].best_epoch, summary["train_loss"].high) == (0.4, 2, 0.5)
    assert math.isnan(summary["train_loss"].final)
    assert summary["val_loss"].high == math.inf and summary["val_loss"].best == 0.6


def test_a_metric_with_no_number_at_all_has_no_best():
    summary = by_metric(summarize([epoch(1, train_loss=math.nan)]))["train_loss"]
    assert (summary.best, summary.best_epoch, summary.low, summary.high) == (None, None, None, None)
    assert math.isnan(summary.final)


def test_a_resumed_runs_later_record_of_an_epoch_replaces_the_earlier_one():
    records = [epoch(1, train_loss=0.9), epoch(2, train_loss=0.1), epoch(2, train_loss=0.5), epoch(3, train_loss=0.4)]
    assert [r["train_loss"] for r in latest_epochs(records)] == [0.9, 0.5, 0.4]
    assert by_metric(summarize(records))["train_loss"].best == 0.4


def test_equal_bests_give_the_first_epoch_that_reached_it():
    records = [epoch(1, val_loss=0.5), epoch(2, val_loss=0.3), epoch(3, val_loss=0.3)]
    assert by_metric(summarize(records))["val_loss"].best_epoch == 2
