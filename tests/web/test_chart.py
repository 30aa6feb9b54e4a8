"""The 14-day chart's geometry: bars scale to the busiest day and stack by priority."""

from __future__ import annotations

from datetime import date, timedelta

from notifier.web.chart import daily_chart

from notifier.notifications import DailyCount


def _day(offset: int, **counts: int) -> DailyCount:
    full = {"low": 0, "normal": 0, "high": 0, "critical": 0} | counts
    return DailyCount(date(2026, 3, 1) + timedelta(days=offset), full)


def test_busiest_day_fills_the_plot_and_segments_stack() -> None:
    chart = daily_chart([_day(0, low=1), _day(1, high=2, critical=2), _day(2)])
    assert chart.peak == 4 and chart.total == 5
    busy = chart.bars[1]
    assert [s.priority for s in busy.segments] == ["high", "critical"]  # critical on top
    plot = chart.baseline - chart.top
    assert abs(sum(s.height for s in busy.segments) - plot) < 0.05
    assert busy.segments[1].y < busy.segments[0].y
    assert chart.bars[0].segments[0].height == round(plot / 4, 2)
    assert chart.bars[2].segments == ()
    assert busy.summary == "02 Mar: 4 notifications (2 critical, 2 high)"
    assert chart.bars[2].summary == "03 Mar: 0 notifications"


def test_empty_chart_has_no_segments() -> None:
    chart = daily_chart([_day(i) for i in range(14)])
    assert chart.peak == 0 and len(chart.bars) == 14
    assert all(bar.segments == () for bar in chart.bars)
    assert chart.bars[-1].show_label  # today is always labelled
