"""Figures, percentiles and the printed tables.

Each figure is printed next to its target and a PASS/FAIL marker, with its latency
percentiles, errors and the CPU split, so a reader can tell a slow server from a busy host.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from bench import cpu

UNBALANCED = 0.8  # share of the connections in one worker beyond which a run is skewed


@dataclass(frozen=True, slots=True)
class Goal:
    """A target from the issue: at least (throughput) or at most (latency) ``bound``."""

    bound: float
    at_least: bool

    def met(self, value: float) -> bool:
        """Whether ``value`` reaches the target."""
        return value >= self.bound if self.at_least else value <= self.bound

    def __str__(self) -> str:
        bound = f"{self.bound:,.0f}" if self.bound == int(self.bound) else f"{self.bound:g}"
        return f"{'>=' if self.at_least else '<='} {bound}"


def verdict(goal: Goal | None, value: float) -> str:
    """PASS or FAIL against the target; "-" for figures quoted for comparison only."""
    if goal is None:
        return "-"
    return "PASS" if goal.met(value) else "FAIL"


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured number with everything needed to judge it."""

    label: str
    value: float
    unit: str
    latencies: Sequence[float]
    errors: int
    goal: Goal | None = None
    usage: cpu.Usage | None = None
    client_cores: float | None = None
    note: str = ""
    failure: str = ""  # error statuses and the first error, when there were any
    skewed: int = 0  # runs (rounds) in which one worker held most of the connections

    @property
    def other_cores(self) -> float:
        """Cores busy on the host but used by neither the server nor the clients."""
        if self.usage is None:
            return 0.0
        return self.usage.host - self.usage.server - (self.client_cores or 0.0)

    @property
    def spread(self) -> str:
        """Connections per worker, e.g. ``[5+3]``: gunicorn hands them out by chance."""
        workers = self.usage.workers if self.usage else ()
        return "[" + "+".join(str(w.connections) for w in workers) + "]" if workers else ""

    @property
    def verdict(self) -> str:
        return verdict(self.goal, self.value)


def skewed(usage: cpu.Usage | None) -> bool:
    """Gunicorn gave one worker most of the keep-alive connections (so most of the work)."""
    held = [w.connections for w in usage.workers] if usage else []
    return len(held) > 1 and max(held) > UNBALANCED * sum(held)


def median_round(rounds: Sequence[Figure]) -> Figure:
    """Interleaved rounds of one measurement as one figure: the median round's value and CPU,
    every round's latencies and errors, and each round's value in the note.

    Rounds interleaved with the other servers' see the same machine, so drift on a shared
    host and the chance spread of connections over workers weigh on every server alike.
    """
    middle = sorted(rounds, key=lambda f: f.value)[len(rounds) // 2]
    values = " / ".join(f"{f.value:,.0f} {f.spread}" for f in rounds)
    return dataclasses.replace(
        middle,
        latencies=[x for f in rounds for x in f.latencies],
        errors=sum(f.errors for f in rounds),
        note=f"rounds {values}; median: {middle.note}",
        failure=next((f.failure for f in rounds if f.failure), ""),
        skewed=sum(f.skewed for f in rounds),
    )


def per_core(rounds: Sequence[Figure]) -> float:
    """Requests per second of server CPU, the median over rounds (NaN without CPU figures).

    On a shared host the cores a server gets vary with everything else that runs, and its
    throughput with them; the CPU it spends per request varies far less, so two servers'
    code paths are compared more steadily by this than by their rates.
    """
    return percentile([f.value / f.usage.server for f in rounds if f.usage and f.usage.server], 50)


def flagged(figures: Sequence[Figure]) -> list[str]:
    """What a phase's tables are followed by: each figure's errors, and the figures for which
    gunicorn gave one worker most of the connections (so they vary from run to run)."""
    lines = [f"errors in {f.label}: {f.failure}" for f in figures if f.failure]
    skewed = [f"{f.label} ({f.skewed}x)" for f in figures if f.skewed]
    if skewed:
        lines.append(
            "warning: one worker held most client connections during: "
            + ", ".join(skewed)
            + "; gunicorn spreads them by chance, so those figures vary from run to run"
        )
    return lines


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between the two nearest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.1f} ms"


def _cores(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _server(usage: cpu.Usage | None) -> str:
    """Server cores and each worker's share with its connections: ``1.36 = 0.98 [6] + 0.38 [2]``."""
    if usage is None:
        return "-"
    split = " + ".join(f"{w.cores:.2f} [{w.connections}]" for w in usage.workers)
    return f"{usage.server:.2f} = {split}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def figures_table(figures: Sequence[Figure]) -> str:
    """Value, target, verdict, latency percentiles and errors of every figure."""
    header = ["figure", "value", "target", "verdict", "p50", "p90", "p99", "errors"]
    rows = [
        [
            f.label,
            f"{f.value:,.1f} {f.unit}" if f.unit == "ms" else f"{f.value:,.0f} {f.unit}",
            f"{f.goal} {f.unit}" if f.goal else "-",
            f.verdict,
            _ms(percentile(f.latencies, 50)),
            _ms(percentile(f.latencies, 90)),
            _ms(percentile(f.latencies, 99)),
            str(f.errors),
        ]
        for f in figures
    ]
    return table(header, rows, right={1, 4, 5, 6, 7})


def cpu_table(figures: Sequence[Figure], host_cores: int) -> str:
    """Average cores used by the server, the load generator, the host and anything else.

    "other" is host busy minus server and clients: other processes and unattributed kernel
    work. When it is large, the machine was not quiet and the figures are pessimistic.
    """
    header = [
        "phase",
        "server = workers [connections]",
        "clients",
        "other",
        f"host busy (of {host_cores})",
        "note",
    ]
    rows = [
        [
            f.label,
            _server(f.usage),
            _cores(f.client_cores),
            _cores(f.other_cores if f.usage else None),
            _cores(f.usage.host if f.usage else None),
            f.note,
        ]
        for f in figures
    ]
    return table(header, rows, right={1, 2, 3, 4})


@dataclass(frozen=True, slots=True)
class Ratio:
    """A quotient of two figures' values, optionally against a target."""

    label: str
    numerator: float
    denominator: float
    goal: Goal | None = None

    @property
    def value(self) -> float:
        return self.numerator / self.denominator if self.denominator else math.nan

    @property
    def verdict(self) -> str:
        return verdict(self.goal, self.value)


def ratios_table(ratios: Sequence[Ratio]) -> str:
    """Each ratio as numerator / denominator = value, with its target when it has one."""
    header = ["ratio", "value", "target", "verdict", "from"]
    rows = [
        [
            r.label,
            "-" if math.isnan(r.value) else f"{r.value:.2f}",
            str(r.goal) if r.goal else "-",
            r.verdict,
            f"{r.numerator:,.0f} / {r.denominator:,.0f}",
        ]
        for r in ratios
    ]
    return table(header, rows, right={1})


def pairs_line(numerators: Sequence[Figure], denominators: Sequence[Figure]) -> str:
    """Round-by-round ratios of two figures measured in interleaved rounds, with each round's
    connections per worker, and the median of those whose split was the same on both sides.

    The split weighs more than most differences between two servers' code paths (a worker
    holding all connections is held to one core by its GIL), so a ratio of medians taken
    from rounds of different splits may say more about the split than about the code.
    """
    pairs = list(zip(numerators, denominators, strict=True))
    rounds = ", ".join(
        f"{a.value / b.value:.2f} {a.spread}/{b.spread}" if b.value else "-" for a, b in pairs
    )
    same = [
        a.value / b.value
        for a, b in pairs
        if b.value and a.usage and b.usage and _split(a.usage) == _split(b.usage)
    ]
    matched = (
        f"median of the {len(same)} with the same split: {percentile(same, 50):.2f}"
        if same
        else "no round had the same split on both sides"
    )
    return f"  by round, {numerators[0].label} / {denominators[0].label}: {rounds}; {matched}"


def _split(usage: cpu.Usage) -> list[int]:
    return sorted(w.connections for w in usage.workers)


@dataclass(frozen=True, slots=True)
class Reviews:
    """SubjectAccessReviews a fake cluster received during each round of one figure, and how
    many were expected in each: one per busy worker per cache window for a reviewed user
    (a worker holding no connection makes none; a round longer than the cache's lifetime
    opens another window), none for ``system:masters``."""

    label: str
    counts: Sequence[int]
    expected: Sequence[int]

    @property
    def within_expected(self) -> bool:
        """Each round got what was expected (a cache still warm from the round before
        may save a review, so fewer pass; more means the cache did not hold)."""
        return all(n <= e for n, e in zip(self.counts, self.expected, strict=True))


def reviews_table(reviews: Sequence[Reviews], ttl: float) -> str:
    """Reviews received per round of each figure against those expected."""
    header = [
        "phase",
        "reviews per round",
        "total",
        f"expected (1 per busy worker per {ttl:g} s cache window)",
    ]
    rows = [
        [
            r.label,
            " / ".join(str(n) for n in r.counts),
            str(sum(r.counts)),
            " / ".join(str(n) for n in r.expected) + f" = {sum(r.expected)}",
        ]
        for r in reviews
    ]
    return table(header, rows, right={2})
