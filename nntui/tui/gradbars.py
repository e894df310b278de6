"""Text layout of the gradient pane: bars on a log scale, heatmap levels, short layer names.
Pure Python (no textual, no rich): the pane (`gradpane.py`) styles what these functions lay out.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from nntui.tui.formatting import log_fraction

PARTIAL_BLOCKS = " ▏▎▍▌▋▊▉"
VALUES_WIDTH = 16  # " 1.2e-03 3.4e-04": the norm and the update ratio after the bar
MIN_BAR, BESIDE_BAR, MIN_HEAT = 3, 16, 24
GAP = " │ "  # between the bars and a heatmap beside them
RATIO_LOW, RATIO_HIGH = 1e-5, 1e-1  # update/weight ratios outside this band are highlighted (~1e-3 is typical)
MIN_NAME_WIDTH = 6
ELLIPSIS = "…"


# ---------------------------------------------------------------------------------- layout

@dataclass(frozen=True)
class PaneLayout:
    """Widths of the pane's columns, and where the heatmap goes ("beside", "below" or "")."""

    name_width: int
    bar_width: int
    heat_width: int
    heat: str

    @property
    def heat_indent(self) -> int:
        """The column where the heatmap's cells start."""
        if self.heat == "beside":
            return self.name_width + 3 + self.bar_width + VALUES_WIDTH + len(GAP)
        return self.name_width + 1


def pane_layout(width: int, height: int, name_width: int, rows: int, legend_lines: int) -> PaneLayout:
    """Bars and legend always; the heatmap beside them when the width leaves MIN_HEAT cells
    after a BESIDE_BAR-wide bar, else below when the height holds it (a title, a row per
    layer, the colour legend), else not at all."""
    fixed = name_width + 3 + VALUES_WIDTH  # name, flag between spaces, (bar), values
    spare = width - fixed - BESIDE_BAR - len(GAP) - MIN_HEAT
    if spare >= 0:
        bar_width = BESIDE_BAR + spare // 3  # the heatmap gets most of what is left: it holds the history
        return PaneLayout(name_width, bar_width, width - fixed - bar_width - len(GAP), "beside")
    bar_width = max(MIN_BAR, width - fixed)
    if 1 + rows + legend_lines + 2 + rows <= height:
        return PaneLayout(name_width, bar_width, width - name_width - 1, "below")
    return PaneLayout(name_width, bar_width, 0, "")


# ---------------------------------------------------------------------------------- bars

def bar_segments(latest: float, low: float, high: float, scale: tuple[int, int],
                 width: int) -> list[tuple[str, str]]:
    """A bar of `width` cells as (text, kind) runs: "bar" (█, the latest norm), "bar-range" (▓,
    the part of the bar inside the recent low..high range), "range" (░, that range beyond the
    bar) or "track" (·)."""
    low_exp, high_exp = scale
    filled = log_fraction(latest, low_exp, high_exp) * width if not math.isnan(latest) else 0.0
    whole = min(width, int(filled))
    range_from = int(log_fraction(low, low_exp, high_exp) * width) if math.isfinite(low) else width
    range_to = math.ceil(log_fraction(high, low_exp, high_exp) * width) if math.isfinite(high) else -1
    cells: list[tuple[str, str]] = []
    for index in range(width):
        in_range = range_from <= index < range_to
        if index < whole:
            cells.append(("▓", "bar-range") if in_range else ("█", "bar"))
        elif index == whole and int((filled - whole) * len(PARTIAL_BLOCKS)):
            cells.append((PARTIAL_BLOCKS[int((filled - whole) * len(PARTIAL_BLOCKS))], "bar"))
        else:
            cells.append(("░", "range") if in_range else ("·", "track"))
    return [("".join(text for text, _ in run), kind)
            for kind, run in ((kind, list(group)) for kind, group in itertools.groupby(cells, key=lambda c: c[1]))]


def fmt_norm(value: float | None) -> str:
    """A norm or ratio in 7 characters: `1.2e-03`, or `–` when there is none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–".rjust(7)
    if not math.isfinite(value):
        return str(value).rjust(7)
    return f"{value:.1e}"


def ratio_unusual(ratio: float | None) -> bool:
    """Whether an update/weight ratio is far from the typical ~1e-3."""
    return ratio is not None and not RATIO_LOW <= ratio <= RATIO_HIGH


# ---------------------------------------------------------------------------------- heatmap

def heat_level(log_norm: float, scale: tuple[int, int], levels: int) -> int:
    """Which of `levels` colours (coldest 0) a mean log10 norm gets on the scale."""
    low_exp, high_exp = scale
    return level_of((log_norm - low_exp) / ((high_exp - low_exp) or 1), levels)


def level_of(fraction: float, levels: int) -> int:
    return min(levels - 1, max(0, int(fraction * levels)))


def decade_legend(scale: tuple[int, int], width: int) -> list[tuple[str, float | None]]:
    """The heatmap's colour legend in `width` cells as (text, fraction) runs: each decade's
    label (fraction None) then cells coloured across that decade (fraction of the scale at the
    cell's middle); only the two end labels when the decades do not fit."""
    low_exp, high_exp = scale
    decades = max(1, high_exp - low_exp)
    labels = [f" 1e{exponent} " for exponent in range(low_exp, high_exp + 1)]
    labels[0], labels[-1] = labels[0].lstrip(), labels[-1].rstrip()
    per_decade = (width - sum(len(label) for label in labels)) // decades
    if per_decade >= 2:
        runs: list[tuple[str, float | None]] = []
        for index, label in enumerate(labels[:-1]):
            runs.append((label, None))
            runs.extend(("█", (index + (cell + 0.5) / per_decade) / decades) for cell in range(per_decade))
        return [*runs, (labels[-1], None)]
    cells = max(3, width - len(labels[0]) - len(labels[-1]))
    return [(labels[0], None), *(("█", (cell + 0.5) / cells) for cell in range(cells)), (labels[-1], None)]


# ---------------------------------------------------------------------------------- names

def short_names(names: Sequence[str], width: int) -> dict[str, str]:
    """Each dotted parameter name in at most `width` (>= MIN_NAME_WIDTH) characters, all
    distinct. The components all names share at the start are dropped; then, the same for
    every name until all fit, components are abbreviated to their first letter and digits:
    the last one first (`weight` -> `w`), then from the left (`layer3.1.conv2.w` ->
    `l3.1.c2.w`); a name still too long keeps its end (`…c2.w`)."""
    width = max(width, MIN_NAME_WIDTH)
    unique = list(dict.fromkeys(names))
    if not unique:
        return {}
    parts = [name.split(".") for name in unique]
    shared = _shared_prefix(parts) if len(unique) > 1 else 0
    parts = [split[shared:] for split in parts]
    maps = _abbreviations(parts)
    levels = max(len(split) for split in parts) + 1
    for level in range(levels):
        texts = [_abbreviated(split, maps, level) for split in parts]
        if all(len(text) <= width for text in texts):
            break
    cut = {name: text if len(text) <= width else ELLIPSIS + text[-(width - 1):] for name, text in zip(unique, texts)}
    return _distinct(cut, width)


def _shared_prefix(parts: list[list[str]]) -> int:
    """How many leading components all names share (each keeps at least one)."""
    shortest = min(len(split) for split in parts)
    count = 0
    while count < shortest - 1 and len({split[count] for split in parts}) == 1:
        count += 1
    return count


def _abbreviate(component: str) -> str:
    return component[:1] + "".join(char for char in component[1:] if char.isdigit())


def _abbreviations(parts: list[list[str]]) -> list[dict[str, str]]:
    """Per position, each component's short form. Components whose short forms would collide
    keep their full form, so the mapping is one-to-one at every position and abbreviated
    names stay as distinct as the names."""
    maps = []
    for position in range(max(len(split) for split in parts)):
        components = {split[position] for split in parts if len(split) > position}
        short = {component: _abbreviate(component) for component in components}
        taken = Counter(short.values())
        maps.append({component: form if taken[form] == 1 else component for component, form in short.items()})
    return maps


def _abbreviated(split: list[str], maps: list[dict[str, str]], level: int) -> str:
    """Level 0: as is; 1: the last component abbreviated; 1 + k: the first k others too."""
    last = len(split) - 1
    positions = ([last] if level >= 1 else []) + list(range(min(level - 1, last)))
    current = list(split)
    for position in positions:
        current[position] = maps[position][split[position]]
    return ".".join(current)


def _distinct(result: dict[str, str], width: int) -> dict[str, str]:
    """Names whose cut forms collide get a number in front instead (`2…ght`), unique."""
    counts = Counter(result.values())
    taken = {text for text in result.values() if counts[text] == 1}
    numbers = itertools.count(1)
    for name, text in result.items():
        if counts[text] == 1:
            continue
        tail = text.lstrip(ELLIPSIS)
        while True:
            tag = f"{next(numbers)}{ELLIPSIS}"
            room = width - len(tag)
            candidate = tag + tail[len(tail) - room:] if room > 0 else tag[:width]
            if candidate not in taken:
                break
        taken.add(candidate)
        result[name] = candidate
    return result
