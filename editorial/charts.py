"""Charts drawn as inline SVG: the geometry of each bar and tick computed here from the numbers,
so templates only place them (each chart has a table with the same figures beside it). The
dashboard's charts, the A/B test reports and a fine-tune's loss curve."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.urls import reverse
from django.utils.translation import gettext as _

from . import metrics, selectors
from .models import FineTuneRun


@dataclass(frozen=True)
class Layout:
    """Chart geometry, in SVG user units (the SVG scales to its box; the text scales with it)."""

    width: int  # the whole chart
    label_width: int  # row labels, right-aligned at label_width - 10
    plot_width: int  # the bars; the rest on the right holds the value labels
    label_chars: int  # longer labels are cut (the table has them whole)


WIDE = Layout(width=720, label_width=190, plot_width=400, label_chars=26)
# For charts that share a row with another: fewer units, so the text stays legible.
COMPACT = Layout(width=560, label_width=150, plot_width=300, label_chars=20)
ROW_HEIGHT = 30
BAR_HEIGHT = 16
TOP = 26  # room for the axis labels
BOTTOM = 8


@dataclass
class ChartRow:
    label: str
    value: float | None  # in axis units; None: no data (no bar)
    low: float | None = None  # 95% interval, in axis units
    high: float | None = None
    n: int = 0  # observations behind the value
    hits: int | None = None  # for rates: the count behind the share
    href: str = ""
    css: str = ""
    # Filled in by ``bar_chart``:
    y: float = 0
    bar_y: float = 0
    text_y: float = 0
    bar_width: float = 0
    low_x: float | None = None
    high_x: float | None = None
    value_x: float = 0

    @property
    def has_interval(self) -> bool:
        return self.low_x is not None and self.high_x is not None

    @property
    def whisker_y(self) -> float:
        return self.bar_y + BAR_HEIGHT / 2

    @property
    def bar_bottom(self) -> float:
        return self.bar_y + BAR_HEIGHT

    # Shares as percentages, for rate charts and their tables.
    @property
    def value_pct(self) -> float | None:
        return None if self.value is None else 100 * self.value

    @property
    def low_pct(self) -> float | None:
        return None if self.low is None else 100 * self.low

    @property
    def high_pct(self) -> float | None:
        return None if self.high is None else 100 * self.high


@dataclass
class Tick:
    x: float
    value: float
    label: str


@dataclass
class BarChart:
    """A horizontal bar chart: one row per item, an optional 95% interval as a whisker."""

    id: str
    title: str
    description: str
    unit: str  # "count" | "percent" | "ratio": how values and ticks are written
    rows: list[ChartRow]
    axis_max: float
    ticks: list[Tick] = field(default_factory=list)
    layout: Layout = WIDE
    height: float = 0
    interval_label: str = ""
    n_label: str = ""
    value_label: str = ""
    bar_height: int = BAR_HEIGHT
    tick_label_y: int = TOP - 12
    grid_top: int = TOP - 4

    @property
    def width(self) -> int:
        return self.layout.width

    @property
    def plot_left(self) -> int:
        return self.layout.label_width

    @property
    def label_x(self) -> int:
        return self.layout.label_width - 10

    @property
    def label_chars(self) -> int:
        return self.layout.label_chars

    @property
    def grid_bottom(self) -> float:
        return self.height - BOTTOM

    @property
    def is_empty(self) -> bool:
        return not any(row.value is not None for row in self.rows)

    @property
    def has_links(self) -> bool:
        return any(row.href for row in self.rows)

    @property
    def has_intervals(self) -> bool:
        return any(row.has_interval for row in self.rows)


def nice_step(largest: float, *, steps: int = 5, integer: bool = False) -> float:
    """A round tick step (1, 2 or 5 × 10ⁿ) that covers ``largest`` in about ``steps`` ticks."""
    if largest <= 0:
        return 1.0
    raw = largest / steps
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if factor == 2.5 and integer:
            continue
        step = factor * power
        if step >= raw:
            break
    return max(step, 1.0) if integer else step


def bar_chart(
    *,
    id: str,
    title: str,
    description: str,
    unit: str,
    rows: Sequence[ChartRow],
    axis_max: float | None = None,
    interval_label: str = "",
    n_label: str = "",
    value_label: str = "",
    layout: Layout = WIDE,
) -> BarChart:
    """Lay out ``rows``: every position the template draws is computed here, in SVG units."""
    rows = list(rows)
    if axis_max is None:
        largest = max(
            [r.high if r.high is not None else (r.value or 0) for r in rows] + [0], default=0
        )
        step = nice_step(largest, integer=unit == "count")
        axis_max = step * max(1, math.ceil(largest / step - 1e-9))
    else:
        step = nice_step(axis_max, steps=4)
    left, plot = layout.label_width, layout.plot_width
    ticks = []
    for i in range(int(axis_max / step + 1e-9) + 1):
        value = round(i * step, 6)
        if unit == "percent":
            label = f"{round(100 * value)}%"
        elif unit == "ratio":
            label = f"{value:g}"
        else:
            label = f"{value:,.0f}" if step >= 1 else f"{value:g}"
        ticks.append(Tick(x=round(left + plot * value / axis_max, 1), value=value, label=label))

    def x_of(v: float) -> float:
        return round(left + plot * min(max(v, 0.0), axis_max) / axis_max, 1)

    for i, row in enumerate(rows):
        row.y = TOP + i * ROW_HEIGHT
        row.bar_y = row.y + (ROW_HEIGHT - BAR_HEIGHT) / 2
        row.text_y = row.y + ROW_HEIGHT / 2 + 4
        if row.value is None:
            row.value_x = left + 6
            continue
        row.bar_width = round(x_of(row.value) - left, 1)
        if row.low is not None and row.high is not None:
            row.low_x, row.high_x = x_of(row.low), x_of(row.high)
        row.value_x = max(x_of(row.value), row.high_x or 0) + 8
    return BarChart(
        id=id, title=title, description=description, unit=unit, rows=rows, axis_max=axis_max,
        ticks=ticks, height=TOP + len(rows) * ROW_HEIGHT + BOTTOM,
        interval_label=interval_label, n_label=n_label, value_label=value_label, layout=layout,
    )


def duration_text(seconds: float | None) -> str:
    """A short, translated duration: "45 s", "12 min", "3 h 20 min", "2 d 4 h"."""
    if seconds is None:
        return "—"
    seconds = round(seconds)
    if seconds < 60:
        return _("%(s)d s") % {"s": seconds}
    minutes = seconds // 60
    if minutes < 60:
        return _("%(m)d min") % {"m": minutes}
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return _("%(h)d h %(m)d min") % {"h": hours, "m": minutes}
    days, hours = divmod(hours, 24)
    return _("%(d)d d %(h)d h") % {"d": days, "h": hours}


def state_chart(state_counts: Sequence[selectors.StateCount]) -> BarChart:
    queue = reverse("draft_queue")
    rows = [
        ChartRow(
            label=item.label, value=item.count, n=item.count,
            href=f"{queue}?{urlencode({'state': item.state})}", css=f"bar-state-{item.state}",
        )
        for item in state_counts
    ]
    total = sum(item.count for item in state_counts)
    return bar_chart(
        id="chart-states",
        title=_("Drafts by state"),
        description=_("%(total)d drafts in all. Each bar links to the queue filtered by that "
                      "state.") % {"total": total},
        unit="count",
        rows=rows,
        n_label=_("Drafts"),
    )


def acceptance_chart(version_metrics: Sequence[metrics.VersionMetrics]) -> BarChart:
    rows = []
    for m in version_metrics:
        rate = m.acceptance
        rows.append(ChartRow(
            label=m.name, value=rate.value, low=rate.low, high=rate.high, n=rate.total,
            hits=rate.hits,
        ))
    return bar_chart(
        id="chart-acceptance",
        title=_("Acceptance rate per model version"),
        description=_("Share of reviewed drafts approved without edits to the model's text, "
                      "with %(level)s confidence intervals (Wilson).") % {"level": "95%"},
        unit="percent",
        rows=rows,
        axis_max=1.0,
        interval_label=_("%(level)s interval") % {"level": "95%"},
        n_label=_("Reviewed"),
        value_label=_("Accepted without edits"),
        layout=COMPACT,
    )


def edit_distance_chart(version_metrics: Sequence[metrics.VersionMetrics]) -> BarChart:
    rows = []
    for m in version_metrics:
        mean = m.edit_distance
        rows.append(ChartRow(
            label=m.name, value=mean.value, low=mean.low, high=mean.high, n=mean.n,
        ))
    largest = max(
        [r.high if r.high is not None else (r.value or 0) for r in rows] + [0.0]
    )
    # A round axis: the smallest of these that holds every bar and whisker.
    axis_max = next((m for m in (0.1, 0.2, 0.5, 1.0) if largest <= m), 1.0)
    return bar_chart(
        id="chart-edit-distance",
        title=_("Mean edit distance per model version"),
        description=_("How much editors changed the model's text before approval: 0 unchanged, "
                      "1 rewritten (words for English, characters for Chinese), with %(level)s "
                      "confidence intervals.") % {"level": "95%"},
        unit="ratio",
        rows=rows,
        axis_max=axis_max,
        interval_label=_("%(level)s interval") % {"level": "95%"},
        n_label=_("Approved"),
        value_label=_("Mean edit distance"),
        layout=COMPACT,
    )


# --- A/B tests ------------------------------------------------------------------------------------

AB_TESTS_SHOWN = 3


@dataclass
class ABFigure:
    """One figure of an A/B comparison: the two arms as a chart and what the difference says."""

    chart: BarChart
    difference: metrics.Difference
    verdict: str


@dataclass
class ABReport:
    test: object
    arms: tuple[metrics.VersionMetrics, metrics.VersionMetrics]
    figures: list[ABFigure]
    significant: bool
    jobs: list = field(default_factory=list)


def _verdict(diff: metrics.Difference, arm_names: tuple[str, str], percent: bool) -> str:
    def fmt(value: float) -> str:
        return f"{100 * value:+.1f} pp" if percent else f"{value:+.3f}"

    if diff.significant is None:
        return _("Not enough reviewed drafts in both arms to compare yet.")
    interval = {"diff": fmt(diff.diff), "low": fmt(diff.low), "high": fmt(diff.high)}
    if not diff.significant:
        return _("Not yet significant: B − A = %(diff)s (95%% interval %(low)s to %(high)s "
                 "includes 0).") % interval
    better = arm_names[0] if diff.better == "a" else arm_names[1]
    return _("Significant: %(better)s is better; B − A = %(diff)s (95%% interval %(low)s to "
             "%(high)s).") % {"better": better, **interval}


def ab_report(test) -> ABReport:
    """Both arms of an A/B test on the drafts of their own jobs, compared with
    ``metrics.compare`` (b − a with 95% intervals), as charts with a verdict each."""
    a, b = metrics.ab_test_arms(test)
    arms = [a, b]
    comparison = metrics.compare(a, b)
    labels = (f"A · {a.name}", f"B · {b.name}")
    figures = []
    specs = [
        ("acceptance", _("Accepted without edits"), "percent",
         lambda m: (m.acceptance.value, m.acceptance.low, m.acceptance.high,
                    m.acceptance.total, m.acceptance.hits)),
        ("edit_distance", _("Mean edit distance"), "ratio",
         lambda m: (m.edit_distance.value, m.edit_distance.low, m.edit_distance.high,
                    m.edit_distance.n, None)),
        ("flag_rate", _("Flagged candidates"), "percent",
         lambda m: (m.flag_rate.value, m.flag_rate.low, m.flag_rate.high, m.flag_rate.total,
                    m.flag_rate.hits)),
        ("rejection", _("Rejected"), "percent",
         lambda m: (m.rejection.value, m.rejection.low, m.rejection.high, m.rejection.total,
                    m.rejection.hits)),
    ]
    for key, title, unit, values in specs:
        rows = []
        for label, m, css in zip(labels, arms, ("bar-arm-a", "bar-arm-b"), strict=True):
            value, low, high, n, hits = values(m)
            rows.append(ChartRow(label=label, value=value, low=low, high=high, n=n, hits=hits,
                                 css=css))
        axis = 1.0
        if unit == "ratio":
            largest = max([r.high if r.high is not None else (r.value or 0) for r in rows]
                          + [0.0])
            axis = next((m for m in (0.1, 0.2, 0.5, 1.0) if largest <= m), 1.0)
        chart = bar_chart(
            id=f"chart-ab-{test.pk}-{key}", title=title,
            description=_("Arm A and arm B with %(level)s confidence intervals.")
            % {"level": "95%"},
            unit=unit, rows=rows, axis_max=axis,
            interval_label=_("%(level)s interval") % {"level": "95%"},
            n_label=_("Reviewed") if key != "flag_rate" else _("Candidates"),
            value_label=title, layout=COMPACT,
        )
        diff = getattr(comparison, key)
        figures.append(ABFigure(chart=chart, difference=diff,
                                verdict=_verdict(diff, labels, unit == "percent")))
    return ABReport(test=test, arms=(a, b), figures=figures,
                    significant=comparison.significant,
                    jobs=list(test.jobs.order_by("ab_arm")))


def ab_reports(limit: int = AB_TESTS_SHOWN) -> list[ABReport]:
    return [ab_report(test) for test in selectors.ab_test_recent_list(limit=limit)]


def loss_chart(run: FineTuneRun, width: int = 560, height: int = 160) -> dict:
    """The training loss per step as an SVG polyline (positions computed here)."""
    points = [(int(s), float(v)) for s, v in run.progress or []]
    if not points:
        return {"points": "", "width": width, "height": height}
    left, top, right, bottom = 48, 10, 10, 24
    steps = max(run.total_steps, points[-1][0], 1)
    high = max(v for _, v in points)
    low = min(min(v for _, v in points), 0.0)
    span = (high - low) or 1.0

    def xy(step: int, value: float) -> str:
        x = left + (width - left - right) * step / steps
        y = top + (height - top - bottom) * (1 - (value - low) / span)
        return f"{x:.1f},{y:.1f}"

    return {
        "points": " ".join(xy(s, v) for s, v in points),
        "width": width, "height": height, "left": left, "bottom_y": height - bottom,
        "top": top, "right_x": width - right, "high": high, "low": low, "steps": steps,
        "label_y": height - 6,
    }
