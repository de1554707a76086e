"""The SVG charts (projections/web/charts.py): well-formed SVG that says what it shows, every text
escaped, each value where the axis puts it, gaps where values are missing, and no script."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from projections.web import charts

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on anything that is not well-formed XML
    assert root.tag == SVG + "svg" and root.get("role") == "img" and root.get("viewBox")
    assert "<script" not in svg and "javascript:" not in svg and not re.search(r"\son[a-z]+=", svg)
    return root


@pytest.mark.parametrize(("value", "top"), [(0, 1), (0.3, 0.5), (1, 1), (7, 10), (12, 20), (2400, 2500), (51, 100)])
def test_the_axis_top_is_a_round_number_at_or_above_the_largest_value(value: float, top: float) -> None:
    assert charts.nice_ceiling(value) == top


def test_a_line_chart_puts_each_value_on_its_axis_and_breaks_where_one_is_missing() -> None:
    svg = charts.line_chart(["10:00", "10:05", "10:10", "10:15"],
                            [charts.Series("报送", [0, 5, None, 10]), charts.Series("记入账本", [0, 5, 6, 9])],
                            title="吞吐量", unit="条/秒")
    root = _parse(svg)
    assert root.find(SVG + "title").text == "吞吐量" and "记入账本 9条/秒" in root.get("aria-label")
    points = [c for c in root.iter(SVG + "circle")]
    assert len(points) == 7  # the missing value draws no point
    lines = [p.get("points").split() for p in root.iter(SVG + "polyline")]
    assert sorted(len(p) for p in lines) == [2, 4]  # the first series broken in two runs, one of one point not drawn
    ys = {c.find(SVG + "title").text: float(c.get("cy")) for c in points}
    # the top of the axis is 10: a value of 10 at the top of the plot, 5 half way, 0 at the bottom
    top, bottom = ys["报送 10:15：10条/秒"], ys["报送 10:00：0条/秒"]
    assert top == charts.MARGIN_TOP and ys["报送 10:05：5条/秒"] == pytest.approx((top + bottom) / 2)


def test_stacked_bars_add_up_and_zero_bars_are_not_drawn() -> None:
    svg = charts.bar_chart(["a", "b", "c"], [charts.Series("退回", [3, 0, 1]), charts.Series("冲突", [1, 0, None])],
                           title="拒收", unit="条")
    root = _parse(svg)
    bars = {r.find(SVG + "title").text: float(r.get("height")) for r in root.iter(SVG + "rect")
            if r.find(SVG + "title") is not None}
    assert set(bars) == {"退回 a：3条", "冲突 a：1条", "退回 c：1条"}
    assert bars["退回 a：3条"] == pytest.approx(3 * bars["冲突 a：1条"])
    assert "合计 5条" in root.get("aria-label")


def test_every_text_is_escaped() -> None:
    evil = '<script>alert("x")</script> & "quoted"'
    for svg in (charts.line_chart([evil], [charts.Series(evil, [1])], title=evil, unit=evil),
                charts.bar_chart([evil], [charts.Series(evil, [1])], title=evil),
                charts.heatmap([evil], [evil], {(0, 0): (0.5, evil)}, title=evil)):
        root = _parse(svg)
        assert "<script>" not in svg
        assert root.find(SVG + "title").text == evil  # the same text, as text


def test_a_heatmap_colours_each_cell_by_its_value_and_greys_a_missing_one() -> None:
    rows, columns = ["许昌市市场监督管理局", "许昌市税务局"], ["26年10月", "26年11月"]
    root = _parse(charts.heatmap(rows, columns, {(0, 0): (1.0, "100"), (0, 1): (0.0, "0"), (1, 1): (0.5, "50")},
                                 title="考核得分"))
    cells = {r.find(SVG + "title").text: r.get("fill") for r in root.iter(SVG + "rect")}
    assert cells["许昌市税务局 26年10月：—"] == "#eeeeee"
    best, worst = cells["许昌市市场监督管理局 26年10月：100"], cells["许昌市市场监督管理局 26年11月：0"]
    assert int(best[3:5], 16) > int(best[1:3], 16) and int(worst[1:3], 16) > int(worst[3:5], 16)  # green, red
    late = _parse(charts.heatmap(rows, columns, {(0, 0): (1.0, "9/9")}, title="超期", good_high=False))
    assert [r.get("fill") for r in late.iter(SVG + "rect")][0] == worst  # all late: red
    # the colours run over a span: 30 % late is as red as all late, 90 points as green as 100
    share = _parse(charts.heatmap(rows, columns, {(0, 0): (0.3, "3/10")}, title="超期", good_high=False,
                                  span=(0.0, 0.3)))
    assert [r.get("fill") for r in share.iter(SVG + "rect")][0] == worst
    score = _parse(charts.heatmap(rows, columns, {(0, 0): (0.9, "90")}, title="得分", span=(0.6, 0.9)))
    assert [r.get("fill") for r in score.iter(SVG + "rect")][0] == best
    # the row labels get the room they need
    labels = [t for t in root.iter(SVG + "text") if t.text == rows[0]]
    assert float(labels[0].get("x")) >= 12 * len(rows[0])


def test_a_chart_without_values_says_so() -> None:
    for svg in (charts.line_chart(["a", "b"], [charts.Series("s", [None, None])], title="t"),
                charts.bar_chart(["a", "b"], [charts.Series("s", [0, None])], title="t"),
                charts.heatmap([], ["a"], {}, title="t")):
        assert [t.text for t in _parse(svg).iter(SVG + "text")].count("暂无数据") == 1
    assert "暂无数据" not in charts.line_chart(["a"], [charts.Series("s", [0])], title="t")
