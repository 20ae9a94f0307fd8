"""Binned colour scales for road indicators: sequential for one period, diverging for the change."""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

# ColorBrewer YlOrRd (7-class, lightest step dropped so every class stays visible on pale tiles).
YLORRD_6 = ("#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#b10026")
# ColorBrewer RdBu (7-class, colour-blind safe), split at the neutral middle class.
# Decreases (improvement) are blue, increases (worse) red.
DECREASE_3 = ("#d1e5f0", "#67a9cf", "#2166ac")  # small, medium, large decrease
INCREASE_3 = ("#fddbc7", "#ef8a62", "#b2182b")  # small, medium, large increase
NEUTRAL = "#f7f7f7"

# Styles for roads that are not coloured.
INSUFFICIENT_COLOR = "#8c8c8c"  # n_vehicles below the publication threshold: grey, dashed
NO_DATA_COLOR = "#b4b4b4"  # no statistics at all: thin grey
CASING_COLOR = "#3c3c3c"  # dark outline under coloured roads so light classes stay visible


def _fmt(x: float) -> str:
    """Number for legend labels: integers without decimals, others with one."""
    return f"{x:g}"


def _with(unit: str, word: str) -> str:
    """Unit followed by 以上/未満: a space only after Latin units ('6 km/h 以上', '20 ポイント以上')."""
    return f"{unit} {word}" if unit[-1:].isascii() and unit[-1:].isalpha() else f"{unit}{word}"


@dataclass(frozen=True)
class SequentialScale:
    """Classes split at `breaks` (ascending, display units); a value equal to a break falls in the upper class."""

    breaks: tuple[float, ...]
    colors: tuple[str, ...]
    unit: str  # "%" or " km/h"

    def __post_init__(self) -> None:
        if len(self.colors) != len(self.breaks) + 1:
            raise ValueError("SequentialScale needs exactly one more colour than breaks")
        if list(self.breaks) != sorted(self.breaks):
            raise ValueError("SequentialScale breaks must be ascending")

    def index(self, value: float) -> int:
        """Class index 0..len(breaks) of `value` (display units)."""
        if value is None or not math.isfinite(value):
            raise ValueError(f"cannot classify non-finite value {value!r}")
        return bisect_right(self.breaks, value)

    def color(self, value: float) -> str:
        """Hex colour of `value` (display units, e.g. percent or km/h)."""
        return self.colors[self.index(value)]

    def legend(self) -> list[tuple[str, str]]:
        """(colour, Japanese label) pairs from the highest class down."""
        u = self.unit
        rows = [(self.colors[0], f"{_fmt(self.breaks[0])}{_with(u, '未満')}")]
        for i in range(1, len(self.breaks)):
            rows.append((self.colors[i], f"{_fmt(self.breaks[i - 1])}〜{_fmt(self.breaks[i])}{u}"))
        rows.append((self.colors[-1], f"{_fmt(self.breaks[-1])}{_with(u, '以上')}"))
        return rows[::-1]


@dataclass(frozen=True)
class DivergingScale:
    """Symmetric classes on |change|: below thresholds[0] is neutral, then small/medium/large by sign."""

    thresholds: tuple[float, ...]  # ascending magnitudes, display units; len == len(DECREASE_3)
    unit: str  # " ポイント" or " km/h"
    down_word: str  # e.g. "減少" / "低下"
    up_word: str  # e.g. "増加" / "上昇"
    decrease: tuple[str, ...] = DECREASE_3
    increase: tuple[str, ...] = INCREASE_3
    neutral: str = NEUTRAL

    def __post_init__(self) -> None:
        if not (len(self.thresholds) == len(self.decrease) == len(self.increase)):
            raise ValueError("DivergingScale needs one threshold per colour step")
        if list(self.thresholds) != sorted(self.thresholds) or self.thresholds[0] <= 0:
            raise ValueError("DivergingScale thresholds must be positive and ascending")

    def index(self, delta: float) -> int:
        """Signed class: 0 neutral, -1..-3 decreases, +1..+3 increases (|delta| equal to a threshold rounds up)."""
        if delta is None or not math.isfinite(delta):
            raise ValueError(f"cannot classify non-finite change {delta!r}")
        step = bisect_right(self.thresholds, abs(delta))
        return 0 if step == 0 else int(math.copysign(step, delta))

    def color(self, delta: float) -> str:
        """Hex colour of a change `delta` = after − before (display units: percentage points or km/h)."""
        i = self.index(delta)
        if i == 0:
            return self.neutral
        return self.decrease[-i - 1] if i < 0 else self.increase[i - 1]

    def legend(self) -> list[tuple[str, str]]:
        """(colour, Japanese label) pairs from the largest decrease to the largest increase."""
        t, u = self.thresholds, self.unit
        spans = [f"{_fmt(t[i])}〜{_fmt(t[i + 1])}{u}" for i in range(len(t) - 1)] + [f"{_fmt(t[-1])}{_with(u, '以上')}"]
        rows = [(self.decrease[i], f"{spans[i]}の{self.down_word}") for i in reversed(range(len(t)))]
        rows.append((self.neutral, f"ほぼ変化なし（±{_fmt(t[0])}{_with(u, '未満')}）"))
        rows += [(self.increase[i], f"{spans[i]}の{self.up_word}") for i in range(len(t))]
        return rows


SHARE_SCALE = SequentialScale(breaks=(10, 20, 30, 40, 50), colors=YLORRD_6, unit="%")
SPEED_SCALE = SequentialScale(breaks=(20, 25, 30, 35, 40), colors=YLORRD_6, unit=" km/h")
SHARE_CHANGE_SCALE = DivergingScale(thresholds=(3, 10, 20), unit=" ポイント", down_word="減少", up_word="増加")
SPEED_CHANGE_SCALE = DivergingScale(thresholds=(1, 3, 6), unit=" km/h", down_word="低下", up_word="上昇")


def sequential_scale(indicator: str) -> SequentialScale:
    """Scale for one period's value of `indicator` (share in percent, speeds in km/h)."""
    if indicator == "share_at_or_over_limit":
        return SHARE_SCALE
    if indicator in ("mean_kmh", "p85_kmh"):
        return SPEED_SCALE
    raise ValueError(f"no colour scale for indicator {indicator!r}")


def change_scale(indicator: str) -> DivergingScale:
    """Scale for after − before of `indicator` (percentage points or km/h)."""
    if indicator == "share_at_or_over_limit":
        return SHARE_CHANGE_SCALE
    if indicator in ("mean_kmh", "p85_kmh"):
        return SPEED_CHANGE_SCALE
    raise ValueError(f"no colour scale for indicator {indicator!r}")


def sequential_color(value: float, indicator: str = "share_at_or_over_limit") -> str:
    """Hex colour for a period value in display units (share: percent 0..100; speeds: km/h)."""
    return sequential_scale(indicator).color(value)


def change_color(delta: float, indicator: str = "share_at_or_over_limit") -> str:
    """Hex colour for after − before in display units (share: percentage points; speeds: km/h)."""
    return change_scale(indicator).color(delta)
