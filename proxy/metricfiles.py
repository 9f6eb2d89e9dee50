"""The sum of every worker's metrics files, in the Prometheus text format, fast enough for a
scrape of many workers and series.

prometheus-client writes the files (its multiprocess mode: per worker and metric type, an
append-only list of JSON keys, each followed by its value) and can merge them, but its merge
parses every entry of every file into objects on every scrape: 1.4 s for 10 workers of 2,000
label sets (500 of them histograms), where Prometheus expects an answer in well under a second
and kube-apiserver gives one in tens of milliseconds. Entries never move once written, so
this reader remembers, per file, where each entry's value lies and which series it adds to:
a scrape reads the new entries, then only the values, straight from the mapped files.

What is summed is what prometheus-client would sum: counters, histograms and summaries over
every file (the master's archives of dead workers included), gauges by their multiprocess
mode (``sum``, ``max``, ``min``; ``all`` keeps a series per worker, labelled ``pid``;
``mostrecent``, which this server does not use, is left out).
"""

from __future__ import annotations

import math
import mmap
import operator
import os
import re
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

_NAME = re.compile(r"^(counter|histogram|summary|gauge)_(?:([a-z]+)_)?(\d+|archive)\.db$")
_LENGTH = struct.Struct("i").unpack_from
_HEAD = 8  # the used length, then padding
_MODES = {"sum": "sum", "all": "sum", "max": "max", "min": "min"}  # ``all``: one series a pid


@dataclass(frozen=True, slots=True)
class _Series:
    family: str
    kind: str  # counter, histogram, summary or gauge
    help: str
    sample: str  # the sample's name (a histogram's _bucket, _sum)
    labels: str  # formatted, without a bucket's ``le``
    le: float = math.nan  # a bucket's upper bound


@dataclass(slots=True)
class _File:
    """What is known of one file: up to where it was read, each entry's value cell (in
    doubles from the start) and series, and how its values combine."""

    inode: int
    mode: str  # "sum", "max" or "min"
    read: int = _HEAD
    cells: list[int] = field(default_factory=list)
    series: list[int] = field(default_factory=list)
    reader: Callable[[memoryview[float]], tuple[float, ...]] | None = None
    distinct: frozenset[int] | None = None

    def values(self, cells: memoryview[float]) -> tuple[float, ...]:
        """The value of every entry, read in C (``operator.itemgetter``)."""
        if self.reader is None:
            at = self.cells
            self.reader = operator.itemgetter(*at) if len(at) > 1 else lambda c: (c[at[0]],)
        return self.reader(cells)

    def held(self) -> frozenset[int]:
        """The series this file holds a value of."""
        if self.distinct is None:
            self.distinct = frozenset(self.series)
        return self.distinct


_Member = tuple[str, int, bool, str]
"""One line of a family: its text up to the value, its series, whether it is a bucket (the
value shown is the running sum), and after a group's last bucket, the text of its count."""


class Files:
    """The reader of one metrics directory (one per worker; a scrape holds its lock)."""

    def __init__(self, directory: str) -> None:
        self._directory = directory
        self._files: dict[str, _File] = {}
        self._ids: dict[tuple[str, str, bytes], int] = {}
        self._series: list[_Series] = []
        self._layout: list[tuple[str, list[_Member]]] | None = None
        self._lock = threading.Lock()

    def text(self) -> bytes:
        """Every series summed over the files, as Prometheus text (0.0.4)."""
        with self._lock:
            totals = self._totals()
            if self._layout is None:
                self._layout = self._lay_out()
            return _text(self._layout, totals)

    def _totals(self) -> list[float | None]:
        """Each series' value; None for one no file holds any more (a dead worker's gauge)."""
        names = os.listdir(self._directory)
        self._files = {name: known for name, known in self._files.items() if name in names}
        sums: list[float] = []
        extremes: dict[int, float] = {}
        for name in names:
            found = _NAME.match(name)
            if found is None:
                continue
            try:
                self._add(name, found, sums, extremes)
            except FileNotFoundError:  # folded into the archive since the listing
                self._files.pop(name, None)
        held = set().union(*(known.held() for known in self._files.values()))
        for ident, value in extremes.items():
            sums[ident] = value
        return [value if ident in held else None for ident, value in enumerate(sums)]

    def _add(
        self, name: str, found: re.Match[str], sums: list[float], extremes: dict[int, float]
    ) -> None:
        kind, mode, pid = found.groups()
        # a gauge's file names its mode; another's may name its writer (requestseries)
        combine = _MODES.get(mode.removeprefix("live")) if kind == "gauge" and mode else "sum"
        if combine is None:
            return
        with open(os.path.join(self._directory, name), "rb") as f:
            stat = os.fstat(f.fileno())
            if stat.st_size < _HEAD:
                return
            known = self._files.get(name)
            if known is None or known.inode != stat.st_ino:
                known = self._files[name] = _File(stat.st_ino, combine)
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                self._parse(data, known, kind, mode or "", pid)
                if not known.cells:
                    return
                cells = memoryview(data).cast("d")
                try:
                    values = known.values(cells)
                finally:
                    cells.release()
        sums.extend([0.0] * (len(self._series) - len(sums)))
        if known.mode == "sum":
            for ident, value in zip(known.series, values, strict=True):
                sums[ident] += value
            return
        pick = max if known.mode == "max" else min
        for ident, value in zip(known.series, values, strict=True):
            extremes[ident] = pick(extremes.get(ident, value), value)

    def _parse(self, data: mmap.mmap, known: _File, kind: str, mode: str, pid: str) -> None:
        """Take note of the entries written since the last scrape."""
        used = _LENGTH(data, 0)[0]
        pos = known.read
        per_worker = pid if mode.endswith("all") and pid != "archive" else ""
        while pos < used:
            length = _LENGTH(data, pos)[0]
            pos += 4
            key = data[pos : pos + length]
            pos += length + (8 - (length + 4) % 8)
            ident = self._ids.get((kind, per_worker, key))
            if ident is None:
                ident = self._register(kind, per_worker, key)
            known.cells.append(pos // 8)
            known.series.append(ident)
            known.reader = known.distinct = None
            pos += 16
        known.read = pos

    def _register(self, kind: str, pid: str, key: bytes) -> int:
        family, sample, labels, help_text = orjson.loads(key)
        le = math.nan
        if sample.endswith("_bucket") and "le" in labels:
            le = float(labels.pop("le"))
        if pid:
            labels["pid"] = pid
        ident = self._ids[(kind, pid, key)] = len(self._series)
        self._series.append(_Series(family, kind, help_text, sample, _labels(labels), le))
        self._layout = None
        return ident

    def _lay_out(self) -> list[tuple[str, list[_Member]]]:
        """Families in first-seen order, each with its HELP and TYPE lines and its series by
        labels: a histogram's buckets by bound, then the group's count and sum."""
        families: dict[str, list[int]] = {}
        for ident, one in enumerate(self._series):
            families.setdefault(one.family, []).append(ident)
        layout = []
        for family, members in families.items():
            first = self._series[members[0]]
            shown = f"{family}_total" if first.kind == "counter" else family
            head = f"# HELP {shown} {_help(first.help)}\n# TYPE {shown} {first.kind}"
            layout.append((head, [self._member(i) for i in sorted(members, key=self._order)]))
        return layout

    def _member(self, ident: int) -> _Member:
        one = self._series[ident]
        if math.isnan(one.le):
            return f"{one.sample}{one.labels} ", ident, False, ""
        bound = "+Inf" if math.isinf(one.le) else repr(one.le)
        labels = f'{one.labels[:-1]},le="{bound}"}}' if one.labels else f'{{le="{bound}"}}'
        count = f"{one.family}_count{one.labels} " if math.isinf(one.le) else ""
        return f"{one.sample}{labels} ", ident, True, count

    def _order(self, ident: int) -> tuple[str, int, float]:
        one = self._series[ident]
        if not math.isnan(one.le):
            return one.labels, 0, one.le
        return one.labels, 1, 0.0  # a histogram's sum after its buckets


def _text(layout: list[tuple[str, list[_Member]]], totals: list[float | None]) -> bytes:
    lines: list[str] = []
    add = lines.append
    for head, members in layout:
        shown = len(lines)
        add(head)
        running = 0.0
        for prefix, ident, bucket, count in members:
            value = totals[ident]
            if value is None:
                continue
            if not bucket:
                add(prefix + _number(value))
                continue
            running += value
            add(prefix + _number(running))
            if count:
                add(count + _number(running))
                running = 0.0
        if len(lines) == shown + 1:  # every series of the family is gone
            lines.pop()
    add("")
    return "\n".join(lines).encode()


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    pairs = ",".join(f'{name}="{_escape(str(value))}"' for name, value in sorted(labels.items()))
    return f"{{{pairs}}}"


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _number(value: float) -> str:
    if value - value == 0.0:  # finite
        return repr(value)
    if math.isnan(value):
        return "NaN"
    return "+Inf" if value > 0 else "-Inf"
