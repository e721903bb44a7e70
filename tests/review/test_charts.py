"""review.charts: weekly counts as inline SVG (no style, no script), exact and escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest
from markupsafe import Markup

from review.charts import OTHER_COLOUR, PALETTE, weekly_bars_svg, weekly_lines_svg

NS = "{http://www.w3.org/2000/svg}"
WEEKS = [date(2024, 4, 29) + timedelta(weeks=i) for i in range(6)]
HOSTILE = '<script>alert("x")</script>'


def _parse(svg: Markup) -> ET.Element:
    assert isinstance(svg, Markup)
    return ET.fromstring(str(svg))


def _all(root: ET.Element, tag: str, cls: str | None = None) -> list[ET.Element]:
    return [e for e in root.iter(NS + tag) if cls is None or e.get("class") == cls]


def _assert_no_style_or_script(root: ET.Element, svg: str) -> None:
    for element in root.iter():
        assert element.tag not in (NS + "style", NS + "script", NS + "foreignObject")
        assert "style" not in element.attrib
        assert not any(name.startswith("on") for name in element.attrib)
    assert "<script" not in svg and "style=" not in svg


def _axis(root: ET.Element) -> tuple[float, float, int]:
    """(y of 0, y of the top gridline, the top tick's number), read off the drawn axis."""
    ticks = [(int(t.text or ""), float(t.get("y", "")) - 4) for t in _all(root, "text", "y-tick")]
    lines = sorted(float(line.get("y1", "")) for line in _all(root, "line", "grid"))
    assert ticks[0][0] == 0 and ticks[0][1] == lines[-1]
    assert ticks[-1][1] == pytest.approx(lines[0], abs=0.01)
    return lines[-1], lines[0], ticks[-1][0]


def test_stacked_bars_are_exactly_proportional_and_labelled() -> None:
    series = {"en": [4, 0, 10, 2, 7, 1], "ar": [6, 3, 0, 0, 3, 1]}
    svg = weekly_bars_svg(WEEKS, series, title="Candidates by language")
    root = _parse(svg)
    _assert_no_style_or_script(root, svg)
    assert root.get("role") == "img"
    assert root.get("aria-label") == (
        "Candidates by language: bars per week from 2024-04-29 to 2024-06-03 (en, ar)")
    assert root[0].tag == NS + "title" and root[0].text == "Candidates by language"

    zero, top, axis_max = _axis(root)
    assert axis_max == 10                      # the tallest week holds 10: a round axis
    assert [t.text for t in _all(root, "text", "y-tick")] == ["0", "5", "10"]
    per_count = (zero - top) / axis_max
    bars = _all(root, "rect", "bar")
    # a rect per non-zero count, in week order, each series' colour, its exact number on hover
    expected = [(week, name, n) for i, week in enumerate(WEEKS) for name, counts in series.items()
                if (n := counts[i])]
    assert [(r.get("data-week"), r.get("data-series"), r.find(NS + "title").text) for r in bars] == [
        (week.isoformat(), name, f"{name}, week of {week.isoformat()}: {n}")
        for week, name, n in expected
    ]
    for rect, (_, name, n) in zip(bars, expected, strict=True):
        assert float(rect.get("height", "")) == round(n * per_count, 2)
        assert rect.get("fill") == PALETTE[list(series).index(name)]
    # stacked: "ar" sits on "en" in the first week, the stack reaching 10 (the axis top)
    first_en, first_ar = bars[0], bars[1]
    assert float(first_en.get("y", "")) == round(zero - 4 * per_count, 2)
    assert float(first_ar.get("y", "")) == round(top, 2)
    assert first_en.get("x") == first_ar.get("x")
    # legend: one item per series with its total; a few week labels under the axis
    legend = [(g.get("data-series"), g.find(NS + "title").text, g.find(NS + "rect").get("fill"))
              for g in _all(root, "g", "legend-item")]
    assert legend == [("en", "en: 24 in total", PALETTE[0]), ("ar", "ar: 13 in total", PALETTE[1])]
    labels = [t.text for t in _all(root, "text", "x-tick")]
    assert labels == [w.isoformat() for w in WEEKS]   # 6 weeks fit at 720px


def test_grouped_bars_side_by_side() -> None:
    series = {"candidates": [8, 3], "accepted": [2, 0]}
    root = _parse(weekly_bars_svg(WEEKS[:2], series, title="Decisions", stacked=False))
    zero, top, axis_max = _axis(root)
    assert axis_max == 8
    bars = _all(root, "rect", "bar")
    heights = [float(r.get("height", "")) for r in bars]
    assert heights == [round(n * (zero - top) / 8, 2) for n in (8, 2, 3)]
    cand, acc = bars[0], bars[1]
    assert float(acc.get("x", "")) == pytest.approx(float(cand.get("x", "")) + float(
        cand.get("width", "")), abs=0.02)
    assert float(cand.get("y", "")) == round(top, 2)          # both stand on the axis
    assert float(acc.get("y", "")) + float(acc.get("height", "")) == pytest.approx(zero, abs=0.02)


def test_lines_one_polyline_per_series_with_exact_points() -> None:
    series = {"candidates": [5, 6, 0, 12, 3, 4], "accepted": [1, 2, 0, 5, 0, 1]}
    svg = weekly_lines_svg(WEEKS, series, title="Candidates and accepted per week")
    root = _parse(svg)
    _assert_no_style_or_script(root, svg)
    zero, top, axis_max = _axis(root)
    assert axis_max == 15 and [t.text for t in _all(root, "text", "y-tick")] == [
        "0", "5", "10", "15"]                  # 12 at most: the axis goes up in round steps
    groups = _all(root, "g", "series")
    assert [g.get("data-series") for g in groups] == ["candidates", "accepted"]
    for group, (name, counts) in zip(groups, series.items(), strict=True):
        line = group.find(NS + "polyline")
        assert line is not None and line.get("fill") == "none"
        assert line.get("stroke") == PALETTE[list(series).index(name)]
        ys = [float(p.split(",")[1]) for p in line.get("points", "").split()]
        assert ys == [round(zero - n * (zero - top) / axis_max, 2) for n in counts]
        points = group.findall(NS + "circle")
        assert [p.find(NS + "title").text for p in points] == [
            f"{name}, week of {w.isoformat()}: {n}" for w, n in zip(WEEKS, counts, strict=True)]
        assert [float(p.get("cy", "")) for p in points] == ys


def test_hostile_series_names_are_escaped() -> None:
    series = {HOSTILE: [1, 2], "a&b\x00\u202e": [0, 1]}
    for chart in (weekly_bars_svg, weekly_lines_svg):
        svg = chart(WEEKS[:2], series, title=f"Title {HOSTILE}")
        assert "<script" not in svg and "&lt;script&gt;" in svg
        root = _parse(svg)          # well-formed XML: nothing broke out of its attribute or text
        _assert_no_style_or_script(root, svg)
        legend = [g.get("data-series") for g in _all(root, "g", "legend-item")]
        assert legend == [HOSTILE, "a&b"]
        texts = [t.text for g in _all(root, "g", "legend-item") for t in g.iter(NS + "text")]
        assert texts == ['<script>alert("x")</script>', "a&b"]
        assert root[0].text == f"Title {HOSTILE}"


def test_more_than_eight_series_keep_the_seven_largest_plus_other() -> None:
    series = {f"lang{i}": [i, 0] for i in range(1, 11)}     # lang1 .. lang10, totals 1..10
    series["other"] = [50, 0]                              # a series called "other" is folded in
    root = _parse(weekly_bars_svg(WEEKS[:2], series, title="By language"))
    legend = [(g.get("data-series"), g.find(NS + "title").text, g.find(NS + "rect").get("fill"))
              for g in _all(root, "g", "legend-item")]
    kept = [f"lang{i}" for i in range(4, 11)]
    assert legend == [(name, f"{name}: {name[4:]} in total", PALETTE[n])
                      for n, name in enumerate(kept)] + [
        ("other", "other: 4 smaller series, 56 in total", OTHER_COLOUR)]
    other = [r for r in _all(root, "rect", "bar") if r.get("data-series") == "other"]
    assert [r.find(NS + "title").text for r in other] == ["other, week of 2024-04-29: 56"]


def test_many_weeks_get_a_few_labels() -> None:
    weeks = [date(2023, 1, 2) + timedelta(weeks=i) for i in range(52)]
    root = _parse(weekly_lines_svg(weeks, {"all": list(range(52))}, title="A year"))
    labels = [t.text for t in _all(root, "text", "x-tick")]
    assert labels[0] == "2023-01-02" and 3 <= len(labels) <= 8
    assert len(_all(root, "circle", "point")) == 52


def test_empty_input_says_no_data() -> None:
    for svg in (weekly_bars_svg([], {}, title="Nothing yet"),
                weekly_lines_svg(WEEKS, {}, title="Nothing yet")):
        root = _parse(svg)
        assert root.get("aria-label") == "Nothing yet: no data"
        assert [t.text for t in root.iter(NS + "text")] == ["Nothing yet", "no data"]
        assert _all(root, "rect") == [] and _all(root, "polyline") == []


def test_all_zero_weeks_draw_an_empty_axis() -> None:
    root = _parse(weekly_bars_svg(WEEKS[:3], {"en": [0, 0, 0]}, title="Quiet"))
    assert _all(root, "rect", "bar") == []
    assert [t.text for t in _all(root, "text", "y-tick")] == ["0", "1"]


@pytest.mark.parametrize(
    ("series", "message"),
    [
        ({"en": [1, 2, 3]}, "chart series 'en' has 3 values for 2 weeks"),
        ({"en": [1, -2]}, "chart series 'en' holds -2: counts must be whole numbers >= 0"),
        ({"en": [1, 2.5]}, "chart series 'en' holds 2.5"),
    ],
)
def test_bad_series_get_a_clear_error(series: dict[str, list[int]], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        weekly_bars_svg(WEEKS[:2], series, title="Bad")
