"""The metric line format (``metric: loss=0.31 step=200``) and terminal-like line splitting."""

from __future__ import annotations

import pytest

from openbai.web.metrics import MAX_SERIES, LineSplitter, MetricPoint, MetricReader, parse_metric


@pytest.mark.parametrize(
    ("line", "point"),
    [
        ("metric: loss=0.31 step=200", MetricPoint(200, 7, {"loss": 0.31})),
        ("metric: loss=0.31", MetricPoint(7, 7, {"loss": 0.31})),
        ("  metric: acc=1 loss=-2.5e-3 step=3  ", MetricPoint(3, 7, {"acc": 1, "loss": -0.0025})),
        ("metric: val/loss=.5 top-1.acc=+7", MetricPoint(7, 7, {"val/loss": 0.5, "top-1.acc": 7})),
        ("metric: loss=n/a acc=0.5", MetricPoint(7, 7, {"acc": 0.5})),
        ("metric:loss=1", MetricPoint(7, 7, {"loss": 1})),
    ],
)
def test_metric_lines(line: str, point: MetricPoint) -> None:
    assert parse_metric(line, 7) == point


@pytest.mark.parametrize(
    "line",
    [
        "loss=0.31 step=200",
        "INFO metric: loss=1",
        "metric: step=5",
        "metric:",
        "metric: loss=inf acc=nan big=1e999",
        "metric: 1x=2 =3 loss= loss=1,5",
        "Metric: loss=1",
    ],
)
def test_other_lines_are_not_metrics(line: str) -> None:
    assert parse_metric(line, 1) is None


def test_a_carriage_return_rewrites_the_line() -> None:
    lines = LineSplitter()
    assert lines.feed("a\rb") == []
    assert lines.feed("c\r") == []
    assert lines.feed("\nnext\r\n") == ["bc", "next"]
    assert lines.feed("10%\r50%\r100%\ntail") == ["100%"]
    assert lines.finish() == ["tail"]


def test_very_long_lines_are_cut() -> None:
    lines = LineSplitter()
    lines.feed("x" * 100_000)
    assert lines.feed("y" * 100_000 + "\n") == ["x" * 64 * 1024]


def test_the_reader_decodes_across_chunks_and_caps_series() -> None:
    reader = MetricReader()
    data = "metric: é=1\n".encode()  # é is no name: the pair is skipped
    data += b"metric: loss=0.5 step=1\nmet"
    assert reader.feed(data[:13]) == []
    assert reader.feed(data[13:]) == [MetricPoint(1, 2, {"loss": 0.5})]
    assert reader.feed(b"ric: loss=0.25", final=True) == [MetricPoint(3, 3, {"loss": 0.25})]

    many = MetricReader()
    line = "metric: " + " ".join(f"m{i}=1" for i in range(MAX_SERIES + 5)) + "\n"
    (point,) = many.feed(line.encode())
    assert len(point.values) == MAX_SERIES
    assert many.feed(b"metric: other=1\n") == []
