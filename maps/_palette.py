"""Colour classes for road indicators: shares (sequential), speeds (the ETC2.0 speed-map classes) and
changes (diverging). Legends are worded by maps.wording in Japanese or English."""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

import maps.wording as w
from config.settings import SPEED_CLASS_BREAKS_KMH

# ColorBrewer YlOrRd (7-class, lightest step dropped so every class stays visible on pale tiles).
YLORRD_6 = ("#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#b10026")
# Speed classes of published ETC2.0 speed maps: <= 30 km/h blue, 30-40 green, >= 40 orange/red.
# Lightness differs between the three classes (dark blue, light green, mid red-orange) so that
# readers with red-green colour blindness still tell them apart.
SPEED_CLASS_COLORS = ("#2c7bb6", "#a6d96a", "#e34a33")
# ColorBrewer RdBu (7-class, colour-blind safe), split at the neutral middle class.
# Decreases (improvement) are blue, increases (worse) red.
DECREASE_3 = ("#d1e5f0", "#67a9cf", "#2166ac")  # small, medium, large decrease
INCREASE_3 = ("#fddbc7", "#ef8a62", "#b2182b")  # small, medium, large increase
NEUTRAL = "#f7f7f7"

# Styles for roads that are not coloured.
INSUFFICIENT_COLOR = "#8c8c8c"  # n_vehicles below the publication threshold: grey, dashed
NO_DATA_COLOR = "#b4b4b4"  # no statistics at all: thin grey
CASING_COLOR = "#3c3c3c"  # dark outline under coloured roads so light classes stay visible
# Main roads (幹線道路) with figures: a muted tan, like a base map's main road, never a class colour,
# so that an arterial at 60 km/h does not outshine the 生活道路 the map is about.
ARTERIAL_COLOR = "#c8b99b"
# Overlays: purple / black stay distinct from every road class above.
BRAKING_COLOR = "#6a1b9a"
CUT_THROUGH_COLOR = "#111111"
DEVICE_COLOR = "#111111"


def _check(value: float) -> float:
    if value is None or not math.isfinite(value):
        raise ValueError(f"cannot classify non-finite value {value!r}")
    return value


@dataclass(frozen=True)
class SequentialScale:
    """Classes split at `breaks` (ascending, display units); a value equal to a break falls in the upper class."""

    breaks: tuple[float, ...]
    colors: tuple[str, ...]
    unit: str  # "%" or "km/h"

    def __post_init__(self) -> None:
        if len(self.colors) != len(self.breaks) + 1:
            raise ValueError("SequentialScale needs exactly one more colour than breaks")
        if list(self.breaks) != sorted(self.breaks):
            raise ValueError("SequentialScale breaks must be ascending")

    def index(self, value: float) -> int:
        return bisect_right(self.breaks, _check(value))

    def color(self, value: float) -> str:
        """Hex colour of `value` (display units, e.g. percent or km/h)."""
        return self.colors[self.index(value)]

    def legend(self, lang: str = "ja") -> list[tuple[str, str]]:
        """(colour, label) pairs from the highest class down."""
        b, u = self.breaks, self.unit
        rows = [(self.colors[0], w.class_below(b[0], u, lang))]
        rows += [(self.colors[i], w.class_range(b[i - 1], b[i], u, lang)) for i in range(1, len(b))]
        rows.append((self.colors[-1], w.class_at_least(b[-1], u, lang)))
        return rows[::-1]


@dataclass(frozen=True)
class SpeedClassScale:
    """The three classes of published ETC2.0 speed maps: v <= low, low < v < high, v >= high (km/h)."""

    low: float = SPEED_CLASS_BREAKS_KMH[0]
    high: float = SPEED_CLASS_BREAKS_KMH[1]
    colors: tuple[str, str, str] = SPEED_CLASS_COLORS
    unit: str = "km/h"

    def index(self, value: float) -> int:
        v = _check(value)
        return 0 if v <= self.low else 2 if v >= self.high else 1

    def color(self, value: float) -> str:
        return self.colors[self.index(value)]

    def legend(self, lang: str = "ja") -> list[tuple[str, str]]:
        u = self.unit
        return [
            (self.colors[2], w.class_at_least(self.high, u, lang)),
            (self.colors[1], w.class_range(self.low, self.high, u, lang)),
            (self.colors[0], w.class_at_most(self.low, u, lang)),
        ]


@dataclass(frozen=True)
class DivergingScale:
    """Symmetric classes on |change|: below thresholds[0] is neutral, then small/medium/large by sign."""

    thresholds: tuple[float, ...]  # ascending magnitudes, display units; len == len(DECREASE_3)
    kind: str  # 'share' (percentage points) or 'speed' (km/h)
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
        step = bisect_right(self.thresholds, abs(_check(delta)))
        return 0 if step == 0 else int(math.copysign(step, delta))

    def color(self, delta: float) -> str:
        """Hex colour of a change `delta` = after − before (display units: percentage points or km/h)."""
        i = self.index(delta)
        if i == 0:
            return self.neutral
        return self.decrease[-i - 1] if i < 0 else self.increase[i - 1]

    def unit(self, lang: str = "ja") -> str:
        return w.unit("p85" if self.kind == "speed" else "share", lang, change=True)

    def words(self, lang: str = "ja") -> tuple[str, str]:
        """(decrease word, increase word): 低下/上昇 for speeds, 減少/増加 for shares."""
        return w.t(f"decrease_{self.kind}", lang), w.t(f"increase_{self.kind}", lang)

    def legend(self, lang: str = "ja") -> list[tuple[str, str]]:
        """(colour, label) pairs from the largest decrease to the largest increase."""
        t, u = self.thresholds, self.unit(lang)
        down, up = self.words(lang)
        spans = [w.class_range(t[i], t[i + 1], u, lang) for i in range(len(t) - 1)] + [w.class_at_least(t[-1], u, lang)]

        def label(span: str, word: str) -> str:
            text = w.t("class_change", lang, span=span, word=word)
            return text[:1].upper() + text[1:]

        rows = [(self.decrease[i], label(spans[i], down)) for i in reversed(range(len(t)))]
        rows.append((self.neutral, w.class_no_change(t[0], u, lang)))
        rows += [(self.increase[i], label(spans[i], up)) for i in range(len(t))]
        return rows


SHARE_SCALE = SequentialScale(breaks=(10, 20, 30, 40, 50), colors=YLORRD_6, unit="%")
SPEED_SCALE = SpeedClassScale()
SHARE_CHANGE_SCALE = DivergingScale(thresholds=(3, 10, 20), kind="share")
SPEED_CHANGE_SCALE = DivergingScale(thresholds=(1, 3, 6), kind="speed")


def sequential_scale(name: str) -> SequentialScale | SpeedClassScale:
    """Scale for one period's value of an indicator (shares in percent, speeds in km/h)."""
    return SHARE_SCALE if w.indicator(name).kind == "share" else SPEED_SCALE


def change_scale(name: str) -> DivergingScale:
    """Scale for after − before of an indicator (percentage points or km/h)."""
    return SHARE_CHANGE_SCALE if w.indicator(name).kind == "share" else SPEED_CHANGE_SCALE


def sequential_color(value: float, name: str = "share") -> str:
    """Hex colour for a period value in display units (share: percent 0..100; speeds: km/h)."""
    return sequential_scale(name).color(value)


def change_color(delta: float, name: str = "share") -> str:
    """Hex colour for after − before in display units (share: percentage points; speeds: km/h)."""
    return change_scale(name).color(delta)
