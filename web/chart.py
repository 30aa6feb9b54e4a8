"""Geometry of the 14-day chart: stacked bars per day and priority, drawn as inline SVG."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from notifier import DailyCount, Priority

WIDTH = 700
HEIGHT = 180
TOP = 16
BOTTOM = 24
LEFT = 32
# Bottom to top: the most urgent sits on top, where the eye lands first.
STACK_ORDER = (Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.CRITICAL)


@dataclass(frozen=True)
class Segment:
    """One coloured piece of a bar."""

    priority: str
    y: float
    height: float
    count: int


@dataclass(frozen=True)
class Bar:
    """One day: its stacked segments, its label and a sentence for screen readers."""

    x: float
    width: float
    label: str
    show_label: bool
    segments: tuple[Segment, ...]
    total: int
    summary: str


@dataclass(frozen=True)
class Chart:
    """Everything the SVG template needs."""

    width: int
    height: int
    baseline: float
    left: int
    top: int
    peak: int
    bars: tuple[Bar, ...]
    total: int


def daily_chart(days: Sequence[DailyCount]) -> Chart:
    """Lay out one stacked bar per day, scaled to the busiest day."""
    peak = max((day.total for day in days), default=0)
    scale_top = max(peak, 1)
    plot_height = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT) / max(len(days), 1)
    bars = []
    for i, day in enumerate(days):
        y = float(HEIGHT - BOTTOM)
        segments = []
        for priority in STACK_ORDER:
            count = day.counts.get(priority.value, 0)
            if count:
                height = plot_height * count / scale_top
                y -= height
                segments.append(Segment(priority.value, round(y, 2), round(height, 2), count))
        parts = ", ".join(
            f"{day.counts.get(p.value, 0)} {p.value}"
            for p in reversed(STACK_ORDER)
            if day.counts.get(p.value, 0)
        )
        label = day.date.strftime("%d %b")
        bars.append(
            Bar(
                x=round(LEFT + i * slot + slot * 0.15, 2),
                width=round(slot * 0.7, 2),
                label=label,
                show_label=(len(days) - 1 - i) % 2 == 0,
                segments=tuple(segments),
                total=day.total,
                summary=f"{label}: {day.total} notification{'s' if day.total != 1 else ''}"
                + (f" ({parts})" if parts else ""),
            )
        )
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        baseline=HEIGHT - BOTTOM,
        left=LEFT,
        top=TOP,
        peak=peak,
        bars=tuple(bars),
        total=sum(day.total for day in days),
    )
