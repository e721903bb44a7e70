"""The overview page's charts: weekly counts as inline SVG built on the server.

The app's Content-Security-Policy allows no script and no inline style, so a chart is plain
SVG with presentation attributes only (``fill=``, ``stroke=``, ``font-size=``; never ``style=``,
``<style>`` or script). Hovering a bar or a point shows its exact number through an SVG
``<title>``; the whole chart is ``role="img"`` with an ``aria-label`` for screen readers.

    weekly_bars_svg(overview.weeks, {"en": [...], "ar": [...]}, title="Candidates by language")
    weekly_lines_svg(overview.weeks, {"candidates": [...], "accepted": [...]}, title="Per week")

Series names are crawled or configured text: they are cleaned (no control characters) and
escaped by the XML serialiser. Colours come from the Okabe-Ito colour-blind-safe palette; with
more than 8 series the 7 largest are drawn and the rest summed as "other".
"""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from markupsafe import Markup

from review.render import clean_text

__all__ = ["MAX_SERIES", "OTHER", "PALETTE", "weekly_bars_svg", "weekly_lines_svg"]

logger = logging.getLogger(__name__)

# Okabe & Ito (2008), distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442")
OTHER_COLOUR = "#999999"
OTHER = "other"
MAX_SERIES = 8

_FONT = "system-ui, sans-serif"
_TEXT = "#222222"
_GRID = "#dddddd"
_LEGEND_CHARS = 28         # longer names are shortened in the legend (full name in its <title>)
_CHAR_WIDTH = 6.5          # rough width of one 11px character, to lay the legend out
_LEFT, _RIGHT, _BOTTOM = 44.0, 12.0, 22.0
_LEGEND_TOP, _LEGEND_ROW = 30.0, 16.0
_X_LABEL_WIDTH = 90.0      # room for one ISO date under the axis


@dataclass(frozen=True)
class _Series:
    label: str
    values: tuple[int, ...]
    colour: str
    note: str              # the legend's hover text

    @property
    def total(self) -> int:
        return sum(self.values)


@dataclass(frozen=True)
class _Frame:
    """Where the plot area is and how counts map to it."""

    left: float
    top: float
    right: float
    bottom: float
    axis_max: int
    step: int

    def y(self, value: float) -> float:
        return self.bottom - value * (self.bottom - self.top) / self.axis_max

    def height(self, value: float) -> float:
        return value * (self.bottom - self.top) / self.axis_max


def _num(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _label(key: object) -> str:
    return clean_text(key) or "(none)"


def _short(label: str) -> str:
    return label if len(label) <= _LEGEND_CHARS else label[: _LEGEND_CHARS - 1] + "\u2026"


def _prepare(weeks: Sequence[date], series: Mapping[str, Sequence[int]]) -> list[_Series]:
    """Validated series, at most MAX_SERIES of them (the rest summed as "other")."""
    rows: list[tuple[str, tuple[int, ...]]] = []
    for key, values in series.items():
        counts = tuple(values)
        if len(counts) != len(weeks):
            raise ValueError(
                f"chart series {_label(key)!r} has {len(counts)} values for {len(weeks)} weeks; "
                "give one count per week, 0 for an empty week"
            )
        bad = [v for v in counts if isinstance(v, bool) or not isinstance(v, int) or v < 0]
        if bad:
            raise ValueError(f"chart series {_label(key)!r} holds {bad[0]!r}: counts must be "
                             "whole numbers >= 0")
        rows.append((_label(key), counts))
    if len(rows) <= MAX_SERIES:
        return [_Series(label, values, PALETTE[i], f"{label}: {sum(values)} in total")
                for i, (label, values) in enumerate(rows)]
    ranked = sorted((i for i, (label, _) in enumerate(rows) if label != OTHER),
                    key=lambda i: -sum(rows[i][1]))
    kept = sorted(ranked[: MAX_SERIES - 1])
    rest = [rows[i] for i in range(len(rows)) if i not in kept]
    summed = tuple(sum(week) for week in zip(*(values for _, values in rest), strict=True))
    out = [_Series(rows[i][0], rows[i][1], PALETTE[n], f"{rows[i][0]}: {sum(rows[i][1])} in total")
           for n, i in enumerate(kept)]
    out.append(_Series(OTHER, summed, OTHER_COLOUR,
                       f"{OTHER}: {len(rest)} smaller series, {sum(summed)} in total"))
    return out


def _check_size(width: int, height: int) -> None:
    if width < 200 or height < 120:
        raise ValueError(f"chart size {width}x{height} is too small: use at least 200x120")


def _svg(width: int, height: int, title: str, aria: str) -> ET.Element:
    root = ET.Element("svg", {
        "xmlns": "http://www.w3.org/2000/svg", "viewBox": f"0 0 {width} {height}",
        "width": str(width), "height": str(height), "role": "img", "aria-label": aria,
        "font-family": _FONT, "font-size": "11", "fill": _TEXT,
    })
    ET.SubElement(root, "title").text = title
    heading = ET.SubElement(root, "text", {"class": "chart-title", "x": "8", "y": "18",
                                           "font-size": "14", "font-weight": "bold"})
    heading.text = title
    return root


def _no_data(title: str, width: int) -> Markup:
    root = _svg(width, 48, title, f"{title}: no data")
    note = ET.SubElement(root, "text", {"class": "no-data", "x": "8", "y": "38"})
    note.text = "no data"
    return Markup(ET.tostring(root, encoding="unicode"))


def _legend(root: ET.Element, rows: Sequence[_Series], width: int) -> float:
    """Draw the legend under the title; return the y where it ends."""
    group = ET.SubElement(root, "g", {"class": "legend"})
    x, y = 8.0, _LEGEND_TOP
    for row in rows:
        shown = _short(row.label)
        item_width = 14 + len(shown) * _CHAR_WIDTH + 16
        if x > 8 and x + item_width > width - _RIGHT:
            x, y = 8.0, y + _LEGEND_ROW
        item = ET.SubElement(group, "g", {"class": "legend-item", "data-series": row.label})
        ET.SubElement(item, "title").text = row.note
        ET.SubElement(item, "rect", {"x": _num(x), "y": _num(y), "width": "10", "height": "10",
                                     "fill": row.colour})
        ET.SubElement(item, "text", {"x": _num(x + 14), "y": _num(y + 9)}).text = shown
        x += item_width
    return y + _LEGEND_ROW


def _frame(top: float, width: int, height: int, peak: int) -> _Frame:
    """A plot area under ``top`` with an axis up to a round number >= ``peak``."""
    raw = max(peak, 1) / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = max(1, int(next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)))
    axis_max = step * max(1, math.ceil(peak / step))
    bottom = height - _BOTTOM
    if bottom - top < 40:
        raise ValueError(f"chart height {height} leaves no room to plot under the legend; "
                         "make it taller")
    return _Frame(_LEFT, top + 6, width - _RIGHT, bottom, axis_max, step)


def _axes(root: ET.Element, frame: _Frame, weeks: Sequence[date]) -> None:
    group = ET.SubElement(root, "g", {"class": "axes"})
    for tick in range(0, frame.axis_max + 1, frame.step):
        y = _num(frame.y(tick))
        ET.SubElement(group, "line", {"class": "grid", "x1": _num(frame.left), "x2": _num(frame.right),
                                      "y1": y, "y2": y, "stroke": _GRID if tick else _TEXT})
        label = ET.SubElement(group, "text", {"class": "y-tick", "x": _num(frame.left - 6),
                                              "y": _num(frame.y(tick) + 4), "text-anchor": "end"})
        label.text = str(tick)
    slot = (frame.right - frame.left) / len(weeks)
    every = math.ceil(len(weeks) / max(1, int((frame.right - frame.left) // _X_LABEL_WIDTH)))
    for i in range(0, len(weeks), every):
        label = ET.SubElement(group, "text", {
            "class": "x-tick", "x": _num(frame.left + (i + 0.5) * slot),
            "y": _num(frame.bottom + 15), "text-anchor": "middle"})
        label.text = weeks[i].isoformat()


def _hover(row: _Series, week: date, value: int) -> str:
    return f"{row.label}, week of {week.isoformat()}: {value}"


def _aria(title: str, weeks: Sequence[date], rows: Sequence[_Series], kind: str) -> str:
    names = ", ".join(row.label for row in rows)
    return (f"{title}: {kind} per week from {weeks[0].isoformat()} to {weeks[-1].isoformat()}"
            f" ({names})")


def weekly_bars_svg(
    weeks: Sequence[date],
    series: Mapping[str, Sequence[int]],
    *,
    title: str,
    width: int = 720,
    height: int = 240,
    stacked: bool = True,
) -> Markup:
    """Weekly counts as bars: one bar per week with a segment per series (``stacked``), or
    side-by-side bars per week. ``series`` maps a name to one count per week of ``weeks``."""
    _check_size(width, height)
    title = clean_text(title)
    if not weeks or not series:
        return _no_data(title, width)
    rows = _prepare(weeks, series)
    root = _svg(width, height, title, _aria(title, weeks, rows, "bars"))
    legend_end = _legend(root, rows, width)
    per_week = [[row.values[i] for row in rows] for i in range(len(weeks))]
    peak = max(sum(v) if stacked else max(v) for v in per_week)
    frame = _frame(legend_end, width, height, peak)
    _axes(root, frame, weeks)
    slot = (frame.right - frame.left) / len(weeks)
    bar = slot * 0.8
    bars = ET.SubElement(root, "g", {"class": "bars"})
    for i, week in enumerate(weeks):
        start = frame.left + i * slot + (slot - bar) / 2
        below = 0
        for n, row in enumerate(rows):
            value = row.values[i]
            if stacked:
                x, w, top = start, bar, below + value
                below = top
            else:
                x, w, top = start + n * bar / len(rows), bar / len(rows), value
            if value == 0:
                continue
            rect = ET.SubElement(bars, "rect", {
                "class": "bar", "data-series": row.label, "data-week": week.isoformat(),
                "x": _num(x), "y": _num(frame.y(top)), "width": _num(w),
                "height": _num(frame.height(value)), "fill": row.colour})
            ET.SubElement(rect, "title").text = _hover(row, week, value)
    return Markup(ET.tostring(root, encoding="unicode"))


def weekly_lines_svg(
    weeks: Sequence[date],
    series: Mapping[str, Sequence[int]],
    *,
    title: str,
    width: int = 720,
    height: int = 240,
) -> Markup:
    """Weekly counts as one line per series (e.g. candidates vs accepted), a point per week."""
    _check_size(width, height)
    title = clean_text(title)
    if not weeks or not series:
        return _no_data(title, width)
    rows = _prepare(weeks, series)
    root = _svg(width, height, title, _aria(title, weeks, rows, "lines"))
    legend_end = _legend(root, rows, width)
    frame = _frame(legend_end, width, height, max(max(row.values) for row in rows))
    _axes(root, frame, weeks)
    slot = (frame.right - frame.left) / len(weeks)
    lines = ET.SubElement(root, "g", {"class": "lines"})
    for row in rows:
        group = ET.SubElement(lines, "g", {"class": "series", "data-series": row.label})
        points = [(frame.left + (i + 0.5) * slot, frame.y(v)) for i, v in enumerate(row.values)]
        ET.SubElement(group, "polyline", {
            "points": " ".join(f"{_num(x)},{_num(y)}" for x, y in points),
            "fill": "none", "stroke": row.colour, "stroke-width": "2"})
        for (x, y), week, value in zip(points, weeks, row.values, strict=True):
            point = ET.SubElement(group, "circle", {
                "class": "point", "data-week": week.isoformat(), "cx": _num(x), "cy": _num(y),
                "r": "3", "fill": row.colour})
            ET.SubElement(point, "title").text = _hover(row, week, value)
    return Markup(ET.tostring(root, encoding="unicode"))
