"""The load generator: N client processes, each with one keep-alive TLS connection.

Processes, not threads, because a Python client thread holds the GIL for most of a request;
each process sends prebuilt request bytes so its CPU per request stays far below the
server's. All clients connect first, start together on one signal, warm up, then count
only inside a common window, bounded by time and optionally by a number of requests.
"""

from __future__ import annotations

import multiprocessing
import queue
import resource
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event

from bench import cpu
from bench.wire import Connection, Target

STRIDE = 10_000_000  # sequence numbers per client: client i numbers from i * STRIDE
WIDTH = 8  # digits of a sequence number, so a request's length never changes
_CONNECTION_ERROR = 0  # pseudo status for a transport failure
_START_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Job:
    """What each client sends: ``before`` alone, or ``before + number + after``."""

    before: bytes
    after: bytes | None = None
    count: int | None = None  # per client; None: only the time bounds the run
    warmup: float = 1.0
    seconds: float = 5.0

    def request(self, number: int) -> bytes:
        """The request with this sequence number (numbered jobs create distinct names)."""
        if self.after is None:
            return self.before
        return b"%b%0*d%b" % (self.before, WIDTH, number, self.after)


@dataclass(slots=True)
class Outcome:
    """What one or all clients saw inside the measured window."""

    ok: int = 0
    errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: array[float] = field(default_factory=lambda: array("d"))
    elapsed: float = 0.0
    cpu: float = 0.0
    reconnects: int = 0
    failure: str = ""

    def error(self, status: int, why: str) -> None:
        """Count a non-2xx answer or a transport failure; keep the first reason."""
        self.errors += 1
        self.statuses[status] += 1
        self.failure = self.failure or why

    def merge(self, other: Outcome) -> None:
        """Add another client's outcome (elapsed: the longest window)."""
        self.ok += other.ok
        self.errors += other.errors
        self.statuses.update(other.statuses)
        self.latencies.extend(other.latencies)
        self.elapsed = max(self.elapsed, other.elapsed)
        self.cpu += other.cpu
        self.reconnects += other.reconnects
        self.failure = self.failure or other.failure


@dataclass(frozen=True, slots=True)
class Phase:
    """All clients' outcome, with the CPU the server and the host used meanwhile."""

    outcome: Outcome
    usage: cpu.Usage | None

    @property
    def rate(self) -> float:
        """Successful requests per second over the measured window."""
        return self.outcome.ok / self.outcome.elapsed if self.outcome.elapsed else 0.0

    @property
    def client_cores(self) -> float:
        """Cores the load generator used on average."""
        return self.outcome.cpu / self.outcome.elapsed if self.outcome.elapsed else 0.0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _send(conn: Connection, request: bytes, outcome: Outcome) -> bool:
    """One exchange; False if the connection failed and could not be reopened."""
    try:
        reply = conn.exchange(request)
    except (OSError, ValueError) as ex:
        outcome.error(_CONNECTION_ERROR, f"{type(ex).__name__}: {ex}")
        try:
            conn.reopen()
        except OSError:
            return False
        return True
    if not 200 <= reply.status < 300:
        outcome.error(reply.status, f"HTTP {reply.status}: {reply.body[:300]!r}")
    return True


def drive(conn: Connection, job: Job, first: int) -> Outcome:
    """Send requests back to back; time the successes inside the window, count every error."""
    outcome = Outcome()
    start = time.monotonic() + job.warmup
    end = start + job.seconds
    cpu_start, finished, sent = 0.0, start, 0
    measuring = False
    while job.count is None or sent < job.count:
        began = time.monotonic()
        if began >= end:
            break
        if not measuring and began >= start:
            measuring, cpu_start = True, _cpu_seconds()
        errors = outcome.errors
        alive = _send(conn, job.request(first + sent), outcome)
        sent += 1
        finished = time.monotonic()
        if measuring and outcome.errors == errors:
            outcome.ok += 1
            outcome.latencies.append(finished - began)
        if not alive:
            break
    outcome.elapsed = max(0.0, finished - start)
    outcome.cpu = _cpu_seconds() - cpu_start if measuring else 0.0
    outcome.reconnects = conn.reconnects
    return outcome


def _client(
    target: Target, job: Job, index: int, ready: Queue[int], go: Event, results: Queue[Outcome]
) -> None:
    """One client process: connect, say so, wait for the signal, drive, report."""
    outcome = Outcome()
    conn: Connection | None = None
    try:
        conn = Connection(target)
    except OSError as ex:
        outcome.error(_CONNECTION_ERROR, f"connect: {type(ex).__name__}: {ex}")
    try:
        ready.put(index)
        if go.wait(_START_TIMEOUT) and conn is not None:
            outcome = drive(conn, job, index * STRIDE)
    finally:
        if conn is not None:
            conn.close()
        results.put(outcome)


def _await_ready(processes: list[BaseProcess], ready: Queue[int]) -> None:
    """Wait until every client is connected; fail fast if one died on the way."""
    deadline = time.monotonic() + _START_TIMEOUT
    waiting = len(processes)
    while waiting:
        try:
            ready.get(timeout=0.2)
            waiting -= 1
        except queue.Empty:
            codes = [p.exitcode for p in processes if p.exitcode is not None]
            if codes or time.monotonic() > deadline:
                for process in processes:
                    process.terminate()
                raise RuntimeError(f"clients failed to start (exit codes {codes})") from None


def run(target: Target, job: Job, clients: int, server_pid: int) -> Phase:
    """Run ``job`` on ``clients`` processes at once; sample the CPU during the window."""
    context = multiprocessing.get_context("spawn")
    ready: Queue[int] = context.Queue()
    results: Queue[Outcome] = context.Queue()
    go = context.Event()
    processes: list[BaseProcess] = [
        context.Process(target=_client, args=(target, job, i, ready, go, results), daemon=True)
        for i in range(clients)
    ]
    for process in processes:
        process.start()
    _await_ready(processes, ready)
    go.set()
    time.sleep(job.warmup)
    before = cpu.sample(server_pid, target.port)
    if job.count is None:
        time.sleep(job.seconds)
        after = cpu.sample(server_pid, target.port)
    total = Outcome()
    for _ in processes:
        total.merge(results.get(timeout=job.warmup + job.seconds + _START_TIMEOUT))
    if job.count is not None:
        after = cpu.sample(server_pid, target.port)
    for process in processes:
        process.join(10)
    return Phase(total, cpu.usage(before, after))
