"""kube's ``?timeout=`` is a Go duration: what Go accepts is read alike, what Go refuses is
refused in Go's words (kube-apiserver repeats them in its 400)."""

from __future__ import annotations

import pytest

from proxy.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("32s", 32.0),
        ("0", 0.0),
        ("0s", 0.0),
        ("1.5h", 5400.0),
        ("1h2m3s", 3723.0),
        ("300ms", 0.3),
        ("-2m3s", -123.0),
        ("+5s", 5.0),
        (".5s", 0.5),
        ("1.s", 1.0),
        ("250us", 0.00025),
        ("250\u00b5s", 0.00025),
        ("250\u03bcs", 0.00025),
        ("10ns", 1e-8),
    ],
)
def test_go_durations_are_read_as_go_reads_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("abc", 'time: invalid duration "abc"'),
        ("-", 'time: invalid duration "-"'),
        (".s", 'time: invalid duration ".s"'),
        ("5", 'time: missing unit in duration "5"'),
        ("1m5", 'time: missing unit in duration "1m5"'),
        ("5d", 'time: unknown unit "d" in duration "5d"'),
        ("1e3s", 'time: unknown unit "e" in duration "1e3s"'),
        ("3000000h", 'time: invalid duration "3000000h"'),
        ('1"s', 'time: unknown unit "\\"s" in duration "1\\"s"'),
        ("1\u00e9", 'time: unknown unit "\\xc3\\xa9" in duration "1\\xc3\\xa9"'),
    ],
)
def test_what_go_refuses_is_refused_in_gos_words(text: str, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_duration(text)
    assert str(refused.value) == message
