"""One thread per worker process carries every watch of that process.

It reads the change log (one query per tick for all watches, at once after a local write),
works out each change's events once per distinct watch (kind, namespace, selectors), encodes
each event once per output form, and writes them to the watches' sockets without blocking.
A watch whose client does not keep up (more than a bound of unread bytes for more than
a moment) is cut: the client resumes from its last resourceVersion and the others never
wait for it. Queued lines are shared between watches, not copied. The same thread
sends bookmarks, ends watches at their deadline or at shutdown, and notices clients leaving.

The fan-out owns each watch's state: its cursor (the newest revision sent or skipped), its
deadline and its expiry. What a handler gives a watch (:class:`WatchResult`) is pure: the log
to follow, the starting state, and a function from a change to its events.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import selectors
import threading
import time
from collections.abc import Callable, Hashable, Iterator

from handlers.api.contract import WatchResult
from handlers.api.errors import too_many_requests
from handlers.api.watch import WatchEvent, too_old
from proxy.metrics import FANOUT_REVISION, WATCHES_DROPPED, watch_events_sent
from proxy.outlets import Outlet
from store import BATCH, Change, Store
from store.tailer import Tailer

log = logging.getLogger("apiserver.watch")

Render = Callable[[WatchEvent, bool], bytes]  # (event, first of the stream) -> one line

MAX_WAITING = 1000  # changes held for a watch still sending its starting events
MAX_UNSENT = 1 << 20  # bytes a client may leave unread, ...
STALL_SECONDS = 2.0  # ... for at most this long, before its watch is cut
_TIMERS = 0.1  # seconds between looks at deadlines, bookmarks and shutdown


class Watch:
    """One watch, from its subscription to its end."""

    __slots__ = (
        "behind_since",
        "bookmark_at",
        "deadline",
        "expired",
        "first",
        "held",
        "last",
        "out",
        "outlet",
        "overflowed",
        "render",
        "render_key",
        "spec",
        "writing",
    )

    def __init__(self, spec: WatchResult) -> None:
        self.spec = spec
        self.deadline = time.monotonic() + spec.lifetime
        self.last = spec.since or 0  # the newest revision already sent (or skipped)
        self.expired = False  # the start cannot be served: the watch ends after its ERROR
        self.outlet: Outlet | None = None
        self.render: Render | None = None
        self.render_key: Hashable = None
        self.first = True  # no event sent yet (a Table's first row carries the columns)
        self.held: list[Change] = []  # changes that came while the starting events went out
        self.overflowed = False
        self.bookmark_at = 0.0
        self.behind_since = 0.0  # since when more than MAX_UNSENT is unread (0: it is not)
        self.out: list[bytes] = []  # encoded events of this tick
        self.writing = False  # waiting for the socket to take more


class FanOut:
    """The change log of ``store``, carried to this process's watches."""

    def __init__(
        self,
        store: Store,
        stopping: threading.Event,
        *,
        max_watches: int,
        interval: float = 0.02,
        bookmark_seconds: float = 60.0,
    ) -> None:
        self._store = store
        self._tailer = Tailer(store)
        self._max_watches = max_watches
        self._stopping = stopping
        self._interval = interval
        self._bookmark_seconds = bookmark_seconds
        self._lock = threading.Lock()  # the registries below
        self._watches: set[Watch] = set()  # every watch from its subscription to its end
        self._waiting: dict[str, set[Watch]] = collections.defaultdict(set)
        self._carried: dict[str, set[Watch]] = collections.defaultdict(set)
        self._adopted: list[Watch] = []
        self._cancelled: list[Watch] = []
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="watch-fan-out", daemon=True)
        self._thread.start()

    # called from request threads

    def subscribe(self, spec: WatchResult) -> Watch:
        """Hold every change read from now on for the watch until it is carried; 429 when
        this process has as many watches as it may (each holds a request thread)."""
        watch = Watch(spec)
        with self._lock:
            if len(self._watches) >= self._max_watches:
                raise too_many_requests()
            self._watches.add(watch)
            self._waiting[spec.resource].add(watch)
        return watch

    def begin(self, watch: Watch) -> Iterator[WatchEvent]:
        """The events to send first, read by the request's thread once the watch is
        subscribed: the logged changes after its start revision (or a 410 ERROR when they are
        gone), or the state now. Live changes at or below what this sends are skipped later:
        no gap, no duplicate."""
        if watch.spec.since is None:
            watch.last, events = watch.spec.initial()
            return self._starting(watch, events)
        return self._replay(watch)

    @staticmethod
    def _starting(watch: Watch, events: Iterator[WatchEvent]) -> Iterator[WatchEvent]:
        """The starting state as the handler streams it; an ERROR (a compacted or too new
        revision) is the watch's last event."""
        for event in events:
            yield event
            if event.type == "ERROR":
                watch.expired = True
                return

    def _replay(self, watch: Watch) -> Iterator[WatchEvent]:
        start = watch.last
        while True:
            changes, compacted = self._store.changes(watch.last, resource=watch.spec.resource)
            if start < compacted:
                watch.expired = True
                yield too_old(start, compacted)
                return
            for change in changes:
                yield from self._follow(watch, change)
            if len(changes) < BATCH:
                return

    @staticmethod
    def _follow(
        watch: Watch, change: Change, memo: dict[Hashable, list[WatchEvent]] | None = None
    ) -> list[WatchEvent]:
        """The events ``change`` makes on ``watch``; none for what was already sent.

        ``memo`` shares the work between the watches of one process that have equal keys."""
        if change.revision <= watch.last:
            return []
        watch.last = change.revision
        if memo is None:
            return watch.spec.events(change)
        key = (watch.spec.key, change.revision)
        events = memo.get(key)
        if events is None:
            events = memo[key] = watch.spec.events(change)
        return events

    def carry(
        self, watch: Watch, outlet: Outlet, render: Render, render_key: Hashable, *, first: bool
    ) -> None:
        """The starting events are out: from now on this thread writes the watch's events."""
        watch.outlet, watch.render, watch.render_key = outlet, render, render_key
        watch.first = first
        with self._lock:
            self._adopted.append(watch)  # changes are held for it until this thread takes it
        self.poke()

    def cancel(self, watch: Watch) -> None:
        """The request ended early: an error, or a client that left a relayed stream."""
        with self._lock:
            if watch not in self._watches:
                return  # already ended
            self._waiting[watch.spec.resource].discard(watch)
            if watch in self._adopted:
                self._adopted.remove(watch)
            if watch not in self._carried[watch.spec.resource]:
                self._watches.discard(watch)
                return
            self._cancelled.append(watch)
        self.poke()

    def poke(self) -> None:
        """Look at the log now (a local write) rather than at the next tick."""
        with contextlib.suppress(BlockingIOError):  # full: already awake
            os.write(self._wake_write, b".")

    def stop(self) -> None:
        """End the fan-out thread, once its step is done: whoever closes the store after
        this knows no read is under way (a fan-out made in process, for a test)."""
        self._stopped = True
        self.poke()
        self._thread.join(10)

    # the fan-out thread

    def _run(self) -> None:
        read_at = timers_at = 0.0
        while not self._stopped:
            try:
                woken = self._wait(max(0.0, min(read_at, timers_at) - time.monotonic()))
                now = time.monotonic()
                changes: list[Change] = []
                if woken or now >= read_at:
                    changes = self._read()
                    read_at = now + self._interval
                with self._lock:
                    self._take_adopted(now)
                    self._dispatch(changes)
                    if now >= timers_at:
                        self._timers(now)
                        timers_at = now + _TIMERS
            except Exception:
                log.exception("the watch fan-out failed a step")
                time.sleep(self._interval)

    def _wait(self, timeout: float) -> bool:
        """Serve ready sockets; True when poked."""
        woken = False
        for key, mask in self._selector.select(timeout):
            if key.data is None:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self._wake_read, 4096):
                        pass
                woken = True
                continue
            watch: Watch = key.data
            outlet = watch.outlet
            assert outlet is not None
            if mask & selectors.EVENT_READ and outlet.left():
                with self._lock:
                    self._end(watch, abort=True)
            elif mask & selectors.EVENT_WRITE and outlet.flush():
                self._writing(watch, False)
        return woken

    def _read(self) -> list[Change]:
        try:
            changes = self._tailer.read()
        except Exception:
            log.exception("reading the change log failed")
            return []
        FANOUT_REVISION.set(self._tailer.revision)
        return changes

    def _take_adopted(self, now: float) -> None:
        adopted, self._adopted = self._adopted, []
        cancelled, self._cancelled = self._cancelled, []
        for watch in cancelled:
            self._end(watch, abort=True)
        for watch in adopted:
            self._waiting[watch.spec.resource].discard(watch)
            self._carried[watch.spec.resource].add(watch)
            try:
                self._adopt(watch, now)
            except Exception:  # never leave a request thread waiting for a watch not carried
                log.exception("could not carry a watch of %s", watch.spec.resource)
                self._end(watch, abort=True)

    def _adopt(self, watch: Watch, now: float) -> None:
        outlet = watch.outlet
        assert outlet is not None
        outlet.start()
        if watch.overflowed:
            WATCHES_DROPPED.labels("overflow").inc()
            self._end(watch, abort=False)
            return
        fd = outlet.fileno()
        if fd is not None:
            self._selector.register(fd, selectors.EVENT_READ, watch)
        watch.bookmark_at = now + self._bookmark_seconds
        for change in watch.held:
            self._encode(watch, change, {}, {})
        watch.held = []
        self._send(watch)

    def _dispatch(self, changes: list[Change]) -> None:
        """Hand each change to the watches of its resource, each event encoded once."""
        events: dict[Hashable, list[WatchEvent]] = {}
        lines: dict[Hashable, bytes] = {}
        touched: set[Watch] = set()
        for change in changes:
            for watch in self._waiting.get(change.resource, ()):
                if len(watch.held) >= MAX_WAITING:
                    watch.overflowed, watch.held = True, []
                elif not watch.overflowed:
                    watch.held.append(change)
            for watch in self._carried.get(change.resource, ()):
                if self._encode(watch, change, events, lines):
                    touched.add(watch)
        for watch in touched:
            self._send(watch)

    def _encode(
        self,
        watch: Watch,
        change: Change,
        events: dict[Hashable, list[WatchEvent]],
        lines: dict[Hashable, bytes],
    ) -> bool:
        """Queue the lines ``change`` makes on ``watch``; True if there were any."""
        render = watch.render
        assert render is not None
        found = self._follow(watch, change, events)
        for event in found:
            if watch.first:
                watch.out.append(render(event, True))
                watch.first = False
                continue
            key = (change.revision, event.type, watch.render_key)
            line = lines.get(key)
            if line is None:
                line = lines[key] = render(event, False)
            watch.out.append(line)
        return bool(found)

    def _send(self, watch: Watch) -> None:
        outlet = watch.outlet
        assert outlet is not None
        if watch.out:
            lines, watch.out = watch.out, []
            watch_events_sent(watch.spec.resource, lines)
            try:
                flushed = outlet.send(lines)
            except OSError:
                self._end(watch, abort=True)
                return
            if not flushed:
                self._writing(watch, True)

    def _writing(self, watch: Watch, writing: bool) -> None:
        outlet = watch.outlet
        fd = None if outlet is None else outlet.fileno()
        if fd is None or watch.writing == writing:
            return
        watch.writing = writing
        mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if writing else 0)
        self._selector.modify(fd, mask, watch)

    def _timers(self, now: float) -> None:
        stopping = self._stopping.is_set()
        for watches in self._carried.values():
            for watch in list(watches):
                spec = watch.spec
                if stopping or now >= watch.deadline:
                    self._end(watch, abort=False)
                elif self._stalled(watch, now):
                    log.info("cut a watch of %s: its client stopped reading", spec.resource)
                    WATCHES_DROPPED.labels("slow").inc()
                    self._end(watch, abort=True)
                elif spec.bookmarks and now >= watch.bookmark_at:
                    watch.bookmark_at = now + self._bookmark_seconds
                    render = watch.render
                    assert render is not None
                    revision = max(self._tailer.revision, watch.last)
                    watch.out.append(render(spec.bookmark(revision), watch.first))
                    watch.first = False  # a Table's columns go with the first event, whatever it is
                    self._send(watch)

    def _stalled(self, watch: Watch, now: float) -> bool:
        assert watch.outlet is not None
        if watch.outlet.pending <= MAX_UNSENT:
            watch.behind_since = 0.0
        elif not watch.behind_since:
            watch.behind_since = now
        return bool(watch.behind_since) and now - watch.behind_since > STALL_SECONDS

    def _end(self, watch: Watch, *, abort: bool) -> None:
        """Stop carrying ``watch`` and let its request finish."""
        watches = self._carried.get(watch.spec.resource)
        if watches is None or watch not in watches:
            return
        watches.discard(watch)
        self._watches.discard(watch)
        outlet = watch.outlet
        assert outlet is not None
        fd = outlet.fileno()
        if fd is not None:
            with contextlib.suppress(KeyError, ValueError):  # not registered yet
                self._selector.unregister(fd)
        try:
            clean = not abort and outlet.flush()
        except OSError:
            clean = False
        if clean:
            outlet.finish()
        else:
            outlet.abort()
