"""The scale phase, at a small size: it fills by the bulk path, reads through a real server,
and counts what it claims to (every object paged once, the selectors' matches, the churn's
kept log)."""

from __future__ import annotations

from pathlib import Path

from bench import scale
from bench.serve import Launch


def test_the_scale_phase_measures_what_it_names(tmp_path: Path) -> None:
    said: list[str] = []
    lines = scale.run(
        tmp_path / "served",
        Launch(workers=1),
        scale.sqlite_engine(tmp_path, "reads"),
        scale.sqlite_engine(tmp_path, "churn"),
        objects=1_300,
        base=300,
        churn=500,
        say=said.append,
    )
    by_label = {line.label: line for line in lines}
    assert by_label["get p50 1,300 / 300"].goal is not None
    paged = by_label["whole paged list (1,300 objects)"]
    assert paged.note == "3 pages"  # 500 + 500 + 300, each object once
    assert "page 3, limit=500" in by_label  # the last page, as the list is shorter than 1,000
    assert "label selector, 1% (13 items, unpaged)" in by_label
    assert by_label["label selector, 1 match"].value > 0
    churn = by_label["churn: database / (live + kept log)"]
    assert "log 10,500 entries" in churn.note  # the load's 10,000 and the 500 updates, all young
    assert said == [
        "SQLite: filling to 1,300 objects",
        "SQLite: churn, 500 updates on 10,000 objects",
    ]
    report = scale.report(scale.title("SQLite", 1_300), lines)
    assert report.startswith("Scale, SQLite: one namespace of 1,300 customtasks")
