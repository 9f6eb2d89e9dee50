"""The watch phase: many concurrent mTLS watches of one namespace while changes are written.

Each change carries its write time in ``spec.details`` (``bench-watch:<seq>:<ns>``, taken
from ``CLOCK_MONOTONIC``, which every process of the host shares) just before the request is
sent; a watcher subtracts it from the time it read the event, so a latency spans the whole
path: the write request, the change log, the tailer of each worker, the fan-out to every
watch's thread, TLS, and the client's own wake-up. Every watcher should see every change.

The watchers are cheap on purpose: a few processes, each driving hundreds of non-blocking TLS
sockets from one ``selectors`` loop, looking only for the stamp in the bytes they receive (no
JSON parsing, no chunk framing beyond the end of the stream). The writes come from a few
threads of the bench process, paced open-loop (change ``i`` at ``start + i / rate``), half
creates of new objects, half merge patches of objects created before the watch started.
Everything is bounded: the time to open the watches, the writes, the wait for stragglers.
"""

from __future__ import annotations

import contextlib
import errno
import math
import multiprocessing
import os
import queue
import resource
import selectors
import socket
import ssl
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue

import orjson

from bench import cpu, memory
from bench.report import Goal, percentile, table
from bench.scenarios import COLLECTION, task
from bench.serve import Served
from bench.wire import Connection, Target

NAMESPACE = "bench-watch"
MARKER = b"bench-watch:"
_SEQ_DIGITS, _NS_DIGITS = 6, 20
_STAMP = _SEQ_DIGITS + 1 + _NS_DIGITS  # bytes after the marker: "<seq>:<ns>"
_KEEP = len(MARKER) - 1  # bytes kept from a read in case the next one completes a marker
WRITERS = 32  # writer connections: one slow write must not hold up the schedule
PER_WRITER = 4  # objects each writer patches in turn, created before the watches start
_RECV = 65536
_TICK = 0.05  # seconds between a watcher process's looks at its control queue

P50_MS, P99_MS = Goal(50, at_least=False), Goal(250, at_least=False)
DELIVERED_PERCENT, RSS_MB = Goal(100, at_least=True), Goal(300, at_least=False)


@dataclass(frozen=True, slots=True)
class WatchPlan:
    """The knobs of the watch phase."""

    watchers: int
    rate: float  # changes per second
    seconds: float  # of writes
    processes: int  # client processes sharing the watchers
    drain: float  # longest wait after the last write for events still in flight
    threads: int  # APISERVER_THREADS given to the server
    threads_note: str  # why that many
    connect_timeout: float = 60.0

    @property
    def changes(self) -> int:
        return max(1, round(self.rate * self.seconds))


# --- the writer ---------------------------------------------------------------------------


@dataclass(slots=True)
class Writes:
    """What the writer achieved: which changes were written, how fast, how long each took."""

    ok: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    skipped: int = 0  # not sent: the server was so slow that the writes ran out of time
    failure: str = ""
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.ok) / self.elapsed if self.elapsed else 0.0


def stamp(seq: int) -> str:
    """The details of change ``seq``, carrying the time it is written."""
    return f"{MARKER.decode()}{seq:0{_SEQ_DIGITS}d}:{time.monotonic_ns():0{_NS_DIGITS}d}"


def _creates(seq: int) -> bool:
    """Whether change ``seq`` is a create (else a patch): every writer alternates."""
    return (seq // WRITERS) % 2 == 0


def _pool_name(seq: int) -> str:
    """The object change ``seq`` patches: one of its writer's own, so that no two patches of
    one object are ever in flight together (the server gives up after a few conflicts)."""
    return f"u-{seq % WRITERS:02d}-{(seq // (2 * WRITERS)) % PER_WRITER}"


def _post(target: Target, body: bytes) -> bytes:
    head = target.head("POST", COLLECTION.format(NAMESPACE))
    return head + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%b" % (
        len(body),
        body,
    )


def change_request(target: Target, seq: int) -> bytes:
    """Half the changes create ``w-<seq>``, the others merge-patch the details of an object
    of the pool; the stamp is taken here, right before the request is sent."""
    if _creates(seq):
        obj = task(f"w-{seq:0{_SEQ_DIGITS}d}")
        spec = obj["spec"]
        assert isinstance(spec, dict)
        spec["details"] = stamp(seq)
        return _post(target, orjson.dumps(obj))
    path = f"{COLLECTION.format(NAMESPACE)}/{_pool_name(seq)}"
    body = orjson.dumps({"spec": {"details": stamp(seq)}})
    head = target.head("PATCH", path)
    return head + b"Content-Type: application/merge-patch+json\r\nContent-Length: %d\r\n\r\n%b" % (
        len(body),
        body,
    )


def _writer(
    target: Target, seqs: range, start: float, stop: float, rate: float, out: Writes
) -> None:
    """One writer connection: its share of the changes, each at its scheduled time, none
    after ``stop``."""
    conn: Connection | None = None
    for seq in seqs:
        if time.monotonic() >= stop:
            out.skipped += 1
            continue
        delay = start + seq / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        began = time.monotonic()
        try:
            if conn is None:
                conn = Connection(target)
            reply = conn.exchange(change_request(target, seq))
        except (OSError, ValueError) as ex:
            out.errors += 1
            out.failure = out.failure or f"write {seq}: {type(ex).__name__}: {ex}"
            if conn is not None:
                conn.close()
            conn = None
            continue
        if 200 <= reply.status < 300:
            out.ok.append(seq)
            out.latencies.append(time.monotonic() - began)
        else:
            out.errors += 1
            out.failure = out.failure or f"write {seq}: HTTP {reply.status}: {reply.body[:300]!r}"
    if conn is not None:
        conn.close()


def write_limit(plan: WatchPlan) -> float:
    """Seconds after which no more writes are sent: the planned time, and as much again
    (at least 5 s) for a server that cannot keep up."""
    return plan.seconds + max(5.0, plan.seconds)


def write_changes(target: Target, plan: WatchPlan) -> Writes:
    """Write ``plan.changes`` changes at ``plan.rate`` from :data:`WRITERS` connections;
    a server too slow for that rate gets until :func:`write_limit` to take them."""
    start = time.monotonic() + 0.05
    stop = start + write_limit(plan)
    parts = [Writes() for _ in range(WRITERS)]
    threads = [
        threading.Thread(
            target=_writer,
            args=(target, range(k, plan.changes, WRITERS), start, stop, plan.rate, parts[k]),
            name=f"bench-writer-{k}",
        )
        for k in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = Writes(elapsed=time.monotonic() - start)
    for part in parts:
        total.ok.extend(part.ok)
        total.latencies.extend(part.latencies)
        total.errors += part.errors
        total.skipped += part.skipped
        total.failure = total.failure or part.failure
    total.ok.sort()
    return total


# --- the watchers -------------------------------------------------------------------------

_CONNECTING, _HANDSHAKE, _SENDING, _HEADERS, _STREAMING, _CLOSED = range(6)


@dataclass(slots=True)
class WatchOutcome:
    """What some watchers saw; merged over every client process."""

    planned: int = 0
    established: int = 0  # watches whose 200 arrived in time
    delivered: int = 0  # (watch, expected change) pairs received
    expected: int = 0  # (watch, expected change) pairs: planned watches x changes written
    complete: int = 0  # watches that received every change
    events: int = 0  # stamped events received, duplicates included
    duplicates: int = 0
    errors: int = 0  # connections that failed, ERROR events, streams that ended
    failure: str = ""
    latencies: array[float] = field(default_factory=lambda: array("d"))
    cpu: float = 0.0  # client CPU seconds over the window
    window: float = 0.0  # seconds from the writes' start to the end of the wait
    open_seconds: float = 0.0  # time to open every watch (the slowest process)

    def error(self, why: str) -> None:
        self.errors += 1
        self.failure = self.failure or why

    def merge(self, other: WatchOutcome) -> None:
        self.planned += other.planned
        self.established += other.established
        self.delivered += other.delivered
        self.expected += other.expected
        self.complete += other.complete
        self.events += other.events
        self.duplicates += other.duplicates
        self.errors += other.errors
        self.failure = self.failure or other.failure
        self.latencies.extend(other.latencies)
        self.cpu += other.cpu
        self.window = max(self.window, other.window)
        self.open_seconds = max(self.open_seconds, other.open_seconds)


class _Watch:
    """One watch connection and what it received."""

    __slots__ = ("buf", "distinct", "seen", "sock", "state", "tail")

    def __init__(self, sock: socket.socket, slots: int) -> None:
        self.sock = sock
        self.state = _CONNECTING
        self.buf = b""  # the response head until it is complete
        self.tail = b""  # the end of the last read, which may begin a marker
        self.seen = bytearray(slots)
        self.distinct = 0


class _Watchers:
    """A client process's watches, driven by one selector."""

    def __init__(self, target: Target, request: bytes, count: int, slots: int) -> None:
        self.target = target
        self.request = request
        self.slots = slots
        self.context = target.context()
        self.selector = selectors.DefaultSelector()
        self.outcome = WatchOutcome(planned=count)
        self.watches: list[_Watch] = []
        self.now = 0  # monotonic ns of the current wake-up
        for _ in range(count):
            raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            raw.setblocking(False)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            watch = _Watch(raw, slots)
            self.watches.append(watch)
            code = raw.connect_ex((target.host, target.port))
            if code not in (0, errno.EINPROGRESS):
                self.fail(watch, f"connect: {errno.errorcode.get(code, code)}")
                continue
            self.selector.register(raw, selectors.EVENT_WRITE, watch)

    def opening(self) -> int:
        return sum(1 for w in self.watches if w.state < _STREAMING)

    def poll(self, timeout: float) -> None:
        """Wait up to ``timeout`` for sockets to be ready and advance each."""
        for key, _ in self.selector.select(timeout):
            self.now = time.monotonic_ns()
            watch: _Watch = key.data
            try:
                self._advance(watch)
            except (OSError, ValueError) as ex:  # ssl.SSLError is an OSError
                self.fail(watch, f"{type(ex).__name__}: {ex}")

    def fail(self, watch: _Watch, why: str) -> None:
        if watch.state == _CLOSED:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(watch.sock)
        watch.sock.close()
        watch.state = _CLOSED
        self.outcome.error(why)

    def _advance(self, watch: _Watch) -> None:
        if watch.state == _CONNECTING:
            code = watch.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, f"connect: {errno.errorcode.get(code, code)}")
            self.selector.unregister(watch.sock)  # wrapping detaches the plain socket
            watch.sock = self.context.wrap_socket(
                watch.sock, server_hostname=self.target.host, do_handshake_on_connect=False
            )
            self.selector.register(watch.sock, selectors.EVENT_WRITE, watch)
            watch.state = _HANDSHAKE
        sock = watch.sock
        assert isinstance(sock, ssl.SSLSocket)
        if watch.state == _HANDSHAKE:
            try:
                sock.do_handshake()
            except ssl.SSLWantReadError:
                self.selector.modify(sock, selectors.EVENT_READ, watch)
                return
            except ssl.SSLWantWriteError:
                self.selector.modify(sock, selectors.EVENT_WRITE, watch)
                return
            watch.state = _SENDING
        if watch.state == _SENDING:
            try:
                sock.sendall(self.request)  # a few hundred bytes: one record, sent at once
            except ssl.SSLWantWriteError:
                self.selector.modify(sock, selectors.EVENT_WRITE, watch)
                return
            self.selector.modify(sock, selectors.EVENT_READ, watch)
            watch.state = _HEADERS
            return
        # One record per read: what else the kernel holds wakes the selector again, and
        # only plaintext already decrypted (pending) must be read now. Reading until
        # SSLWantReadError instead would cost an exception per event.
        while True:
            try:
                data = sock.recv(_RECV)
            except ssl.SSLWantReadError:
                return
            if not data:
                self.fail(watch, "the server closed a watch")
                return
            self._received(watch, data)
            if watch.state == _CLOSED or not sock.pending():
                return

    def _received(self, watch: _Watch, data: bytes) -> None:
        if watch.state == _HEADERS:
            watch.buf += data
            end = watch.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if watch.buf[9:12] != b"200":
                self.fail(watch, f"watch answered {watch.buf[:300]!r}")
                return
            data, watch.buf = watch.buf[end + 4 :], b""
            watch.state = _STREAMING
            self.outcome.established += 1
        if watch.tail:
            data = watch.tail + data
        size, pos = len(data), 0
        while (at := data.find(MARKER, pos)) >= 0:
            start = at + len(MARKER)
            if start + _STAMP > size:
                watch.tail = data[at:]
                return
            seq = int(data[start : start + _SEQ_DIGITS])
            sent = int(data[start + _SEQ_DIGITS + 1 : start + _STAMP])
            pos = start + _STAMP
            self._event(watch, seq, sent)
        watch.tail = data[max(pos, size - _KEEP) :]
        if b'"type":"ERROR"' in data:
            self.fail(watch, f"ERROR event: {data[max(0, data.find(b'ERROR') - 10) :][:300]!r}")
        elif data.endswith(b"0\r\n\r\n") and (data == b"0\r\n\r\n" or b"\r\n0\r\n\r\n" in data):
            self.fail(watch, "a watch stream ended (last chunk) before the phase did")

    def _event(self, watch: _Watch, seq: int, sent: int) -> None:
        outcome = self.outcome
        outcome.events += 1
        if seq >= self.slots:
            return
        if watch.seen[seq]:
            outcome.duplicates += 1
            return
        watch.seen[seq] = 1
        watch.distinct += 1
        outcome.latencies.append((self.now - sent) / 1e9)

    def close(self, expected: tuple[int, ...]) -> WatchOutcome:
        """Count what each watch received of the ``expected`` changes, then close them."""
        outcome = self.outcome
        for watch in self.watches:
            got = sum(watch.seen[seq] for seq in expected if seq < self.slots)
            outcome.delivered += got
            outcome.complete += got == len(expected)
            if watch.state != _CLOSED:
                watch.sock.close()
        outcome.expected = len(expected) * outcome.planned
        self.selector.close()
        return outcome


@dataclass(frozen=True, slots=True)
class _Expect:
    """Sent to every client process after the writes: what to expect, and until when."""

    seqs: tuple[int, ...]
    deadline: float  # monotonic seconds
    started: float  # monotonic seconds at which the writes started


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _client(
    target: Target,
    request: bytes,
    count: int,
    slots: int,
    open_timeout: float,
    ready: Queue[tuple[int, str]],
    control: Queue[_Expect],
    results: Queue[WatchOutcome],
) -> None:
    """One client process: open ``count`` watches, say how many are open, read events until
    told what to expect and every watch has it (or the deadline passes), report."""
    began = time.monotonic()
    watchers = _Watchers(target, request, count, slots)
    deadline = began + open_timeout
    while watchers.opening() and time.monotonic() < deadline:
        watchers.poll(_TICK)
    for watch in watchers.watches:
        if watch.state < _STREAMING:
            watchers.fail(watch, f"watch not open after {open_timeout:g} s")
    opened = time.monotonic() - began
    ready.put((watchers.outcome.established, watchers.outcome.failure))
    cpu_start, expect = _cpu_seconds(), None
    while True:
        watchers.poll(_TICK)
        if expect is None:
            try:
                expect = control.get_nowait()
            except queue.Empty:
                continue
            wanted = len(expect.seqs)
        if time.monotonic() >= expect.deadline or all(
            w.distinct >= wanted for w in watchers.watches if w.state != _CLOSED
        ):
            break
    ended = time.monotonic()
    outcome = watchers.close(expect.seqs)
    outcome.cpu = _cpu_seconds() - cpu_start
    outcome.window = ended - expect.started
    outcome.open_seconds = opened
    results.put(outcome)


# --- the phase ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Watched:
    """Everything the watch phase measured."""

    plan: WatchPlan
    workers: int
    watchers: WatchOutcome
    writes: Writes
    usage: cpu.Usage | None
    idle: memory.Memory | None  # before any watch
    open: memory.Memory | None  # every watch open, before the writes
    peak: memory.Memory | None  # the largest sample from the writes to the end
    loaded: memory.Memory | None  # right after the writes, with PSS
    bench_cpu: float  # CPU seconds of this process (the writers) over the window


class _Sampler:
    """RSS of the server every ``interval`` seconds on a thread; keeps the largest."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid = pid
        self.interval = interval
        self.peak: memory.Memory | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = memory.sample(self.pid)
            if now is not None and (self.peak is None or now.total > self.peak.total):
                self.peak = now
            self._stop.wait(self.interval)

    def stop(self) -> memory.Memory | None:
        self._stop.set()
        self._thread.join()
        return self.peak


def _prepare(target: Target) -> str:
    """Create the pool the updates patch; answer the revision the watches start from."""
    conn = Connection(target)
    try:
        for number in range(WRITERS * PER_WRITER):
            body = orjson.dumps(task(f"u-{number % WRITERS:02d}-{number // WRITERS}"))
            reply = conn.exchange(_post(target, body))
            if reply.status != 201:
                raise RuntimeError(f"creating the watch pool failed: {reply}")
        reply = conn.exchange(target.get(COLLECTION.format(NAMESPACE) + "?limit=1"), keep=True)
    finally:
        conn.close()
    if reply.status != 200:
        raise RuntimeError(f"listing the watch namespace failed: {reply}")
    revision: str = orjson.loads(reply.body)["metadata"]["resourceVersion"]
    return revision


def _shares(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def run(served: Served, plan: WatchPlan, workers: int, say: Callable[[str], None]) -> Watched:
    """Open the watches, write the changes, wait for them to arrive, measure."""
    target = served.target
    revision = _prepare(target)
    idle = memory.sample(served.pid)
    lifetime = math.ceil(plan.connect_timeout + plan.seconds + plan.drain + 60)
    path = (
        f"{COLLECTION.format(NAMESPACE)}?watch=true&resourceVersion={revision}"
        f"&timeoutSeconds={lifetime}"
    )
    request = target.get(path)
    context = multiprocessing.get_context("spawn")
    ready: Queue[tuple[int, str]] = context.Queue()
    results: Queue[WatchOutcome] = context.Queue()
    controls: list[Queue[_Expect]] = []
    processes: list[BaseProcess] = []
    say(f"opening {plan.watchers:,} watches from {plan.processes} client processes")
    for count in _shares(plan.watchers, plan.processes):
        control: Queue[_Expect] = context.Queue()
        controls.append(control)
        args = (
            target,
            request,
            count,
            plan.changes,
            plan.connect_timeout,
            ready,
            control,
            results,
        )
        processes.append(context.Process(target=_client, args=args, daemon=True))
    try:
        for process in processes:
            process.start()
        opened, failure = 0, ""
        for _ in processes:
            count, why = ready.get(timeout=plan.connect_timeout + 60)
            opened, failure = opened + count, failure or why
        say(f"{opened:,} watches open" + (f" (first failure: {failure})" if failure else ""))
        open_memory = memory.sample(served.pid)
        before = cpu.sample(served.pid, target.port)
        sampler = _Sampler(served.pid)
        say(f"writing {plan.changes:,} changes at {plan.rate:g}/s")
        started, bench_cpu = time.monotonic(), _cpu_seconds()
        writes = write_changes(target, plan)
        loaded = memory.sample(served.pid, pss=True)
        expect = _Expect(tuple(writes.ok), time.monotonic() + plan.drain, started)
        for control in controls:
            control.put(expect)
        say(f"{len(writes.ok):,} changes written; waiting up to {plan.drain:g} s for delivery")
        total = WatchOutcome()
        for _ in processes:
            total.merge(results.get(timeout=plan.drain + 60))
        after = cpu.sample(served.pid, target.port)
        peak = sampler.stop()
        bench_cpu = _cpu_seconds() - bench_cpu
    finally:
        for process in processes:
            process.join(5)
            if process.is_alive():
                process.terminate()
    return Watched(
        plan,
        workers,
        total,
        writes,
        cpu.usage(before, after),
        idle,
        open_memory,
        peak,
        loaded,
        bench_cpu,
    )


# --- the report ---------------------------------------------------------------------------


def _mb(size: float) -> str:
    return f"{size / 1e6:,.0f} MB"


def _verdict(goal: Goal, value: float) -> str:
    return "PASS" if not math.isnan(value) and goal.met(value) else "FAIL"


def report(watched: Watched) -> str:
    """The watch phase's figures against their targets, and what explains them."""
    plan, seen, writes = watched.plan, watched.watchers, watched.writes
    lat = seen.latencies
    p50, p90, p99 = (percentile(lat, q) * 1000 for q in (50, 90, 99))
    worst = max(lat) * 1000 if lat else math.nan
    share = 100 * seen.delivered / seen.expected if seen.expected else 0.0
    peak = watched.peak.total if watched.peak else math.nan
    rows = [
        ["delivery latency p50", f"{p50:,.1f} ms", f"{P50_MS} ms", _verdict(P50_MS, p50)],
        ["delivery latency p99", f"{p99:,.1f} ms", f"{P99_MS} ms", _verdict(P99_MS, p99)],
        [
            "written changes delivered, every watch",
            f"{share:.2f} %",
            f"{DELIVERED_PERCENT} %",
            "PASS" if seen.expected and seen.delivered == seen.expected else "FAIL",
        ],
        [
            f"server RSS, master + {watched.workers} workers (peak)",
            _mb(peak),
            f"{RSS_MB} MB",
            _verdict(RSS_MB, peak / 1e6),
        ],
    ]
    usage = watched.usage
    split = " + ".join(f"{w.cores:.2f} [{w.connections}]" for w in usage.workers) if usage else "-"
    lines = [
        f"watch: {plan.watchers:,} watches of one namespace (HTTPS, client certificate, "
        f"system:masters) from {plan.processes} client processes (selectors, non-blocking TLS), "
        f"127.0.0.1; {plan.changes:,} changes at {plan.rate:g}/s (half creates, half merge "
        f"patches, from {WRITERS} connections), stamped with their write time in spec.details",
        f"server: 1 gunicorn, {watched.workers} workers x {plan.threads} threads "
        f"(APISERVER_THREADS={plan.threads}: {plan.threads_note})",
        "",
        table(["figure", "value", "target", "verdict"], rows, right={1}),
        "",
        f"  latency over {len(lat):,} deliveries: p50 {p50:,.1f} ms, p90 {p90:,.1f} ms, "
        f"p99 {p99:,.1f} ms, max {worst:,.1f} ms",
        f"  delivered {seen.delivered:,} of {seen.expected:,} (watch, change) pairs; "
        f"{seen.complete:,} of {seen.planned:,} watches got every change; "
        f"{seen.established:,} opened (the slowest process took {seen.open_seconds:.1f} s); "
        f"{seen.duplicates} duplicates; {seen.errors} watch errors",
        f"  writes: {len(writes.ok):,} ok, {writes.errors} failed, {writes.skipped} not sent, "
        f"{writes.rate:,.1f}/s achieved; "
        f"write latency p50 {percentile(writes.latencies, 50) * 1000:,.1f} ms, "
        f"p99 {percentile(writes.latencies, 99) * 1000:,.1f} ms",
        f"  cores over {seen.window:.1f} s (writes + delivery): server "
        f"{usage.server if usage else math.nan:.2f} = {split} [watch connections per worker], "
        f"watch clients {seen.cpu / seen.window if seen.window else math.nan:.2f}, "
        f"writers {watched.bench_cpu / seen.window if seen.window else math.nan:.2f}, "
        f"host {usage.host if usage else math.nan:.2f} of {os.cpu_count()}",
    ]
    lines.append("  " + _memory_line(watched))
    if writes.rate < 0.9 * plan.rate or writes.skipped:
        lines.append(
            f"  warning: the server took {writes.rate:,.1f} changes/s of the {plan.rate:g} asked"
            + (
                f" and {writes.skipped:,} were never sent (writes stop after "
                f"{write_limit(plan):g} s)"
                if writes.skipped
                else ""
            )
            + ": the watches were measured under a lighter write load than planned"
        )
    if seen.failure:
        lines.append(f"  first watch error: {seen.failure}")
    if writes.failure:
        lines.append(f"  first write error: {writes.failure}")
    if usage:
        over = [w.connections for w in usage.workers if w.connections > plan.threads]
        if over:
            lines.append(
                f"  warning: a worker held {max(over)} connections for {plan.threads} threads: "
                "the watches beyond its threads wait in its queue and receive nothing"
            )
    return "\n".join(lines)


def _memory_line(watched: Watched) -> str:
    idle, opened, peak, loaded = watched.idle, watched.open, watched.peak, watched.loaded
    parts = []
    if idle:
        parts.append(f"RSS idle {_mb(idle.total)}")
    if opened:
        split = " + ".join(_mb(size) for size in opened.rss.values())
        parts.append(f"watches open {_mb(opened.total)} (master + workers: {split})")
        if idle:
            per = (opened.total - idle.total) / max(1, watched.watchers.established)
            parts.append(f"{per / 1e3:,.0f} kB per watch")
    if peak:
        parts.append(f"peak {_mb(peak.total)}")
    if loaded and loaded.pss is not None:
        parts.append(f"PSS after the writes {_mb(loaded.pss)} (RSS {_mb(loaded.total)})")
    return "memory: " + ("; ".join(parts) if parts else "unavailable (no /proc)")


def failed(watched: Watched) -> bool:
    """Whether anything went wrong (not a missed target): a watch or a write failed."""
    return bool(watched.watchers.errors or watched.writes.errors)
