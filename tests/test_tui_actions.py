"""The monitor's one table of actions: bindings, footer, palette and help agree with it."""

from __future__ import annotations

from nntui.tui.actions import MONITOR_ACTIONS, bindings, palette_entries
from nntui.tui.dialogs import HELP_TEXT
from nntui.tui.monitor import MonitorScreen


def test_every_keyed_action_is_bound_and_in_the_help() -> None:
    bound = {(binding.key, binding.action) for binding in MonitorScreen.BINDINGS}
    for item in MONITOR_ACTIONS:
        assert hasattr(MonitorScreen, f"action_{item.action}"), item.action
        if item.key is None:
            assert all(action != item.action for _, action in bound)
            continue
        assert (item.key, item.action) in bound
        assert f"[b]{item.shown_key}[/b]" in HELP_TEXT and item.help in HELP_TEXT


def test_the_palette_lists_every_action_once_with_its_key() -> None:
    entries = palette_entries()
    assert [action for action, _, _ in entries] == [item.action for item in MONITOR_ACTIONS]
    for (_, title, text), item in zip(entries, MONITOR_ACTIONS):
        assert title == item.title
        assert text.endswith(f"({item.shown_key})") == (item.key is not None)
    assert len(bindings()) == sum(item.key is not None for item in MONITOR_ACTIONS)
