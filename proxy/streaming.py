"""Watch streams: the only glue between what a handler gives a watch and how it is carried.

A watch of a stored kind is subscribed to this process's fan-out, its starting events are
written by the request's thread, then the fan-out carries it. A watch relayed from the
cluster is written by the request's thread from start to end. Both start with the headers at
once and end, on an error after the first byte, with an ERROR event rather than a cut.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from handlers.api.contract import ApiRequest, RelayResult, WatchResult
from handlers.api.errors import bad_request, internal_error
from handlers.api.watch import WatchEvent
from proxy.fanout import FanOut
from proxy.metrics import watch_events_sent
from proxy.negotiation import Output
from proxy.outlets import outlet_for
from proxy.render import INCLUDE_OBJECT, watch_event

log = logging.getLogger("apiserver")

BATCH_BYTES = 1 << 16
"""Bytes of a starting state's events sent in one write: one TLS record per event would
cost the stream more than the events do."""


def carried(
    fanout: FanOut,
    environ: dict[str, Any],
    result: WatchResult,
    output: Output,
    request: ApiRequest,
) -> Iterator[bytes]:
    """Subscribe, read the starting state (errors still become a Status), send it from this
    thread, then hand the watch to the fan-out."""
    render = _renderer(request, output)
    watch = fanout.subscribe(result)
    try:
        initial = fanout.begin(watch)
    except BaseException:
        fanout.cancel(watch)
        raise

    def live(first: bool) -> Iterator[bytes]:
        if watch.expired:
            return iter(())
        outlet = outlet_for(environ)
        fanout.carry(watch, outlet, render, (output, request.param("includeObject")), first=first)
        return outlet.relay()

    cancel = functools.partial(fanout.cancel, watch)
    return _body(request.kind.plural, initial, render, live, cancel, batch=BATCH_BYTES)


def relayed(result: RelayResult, output: Output, request: ApiRequest) -> Iterator[bytes]:
    """A watch relayed from the cluster: every event from this request's thread."""
    render = _renderer(request, output)
    return _body(
        request.kind.plural, result.events, render, lambda first: iter(()), result.events.close
    )


def _renderer(request: ApiRequest, output: Output) -> Callable[[WatchEvent, bool], bytes]:
    """How each event of a watch is written (400 for a bad includeObject, before streaming)."""
    include = request.param("includeObject")
    if include not in INCLUDE_OBJECT:
        raise bad_request(f'invalid includeObject value "{include}"')
    return functools.partial(watch_event, request.kind, output=output, include=include)


def _body(
    resource: str,
    events: Iterator[WatchEvent],
    render: Callable[[WatchEvent, bool], bytes],
    then: Callable[[bool], Iterator[bytes]],
    cleanup: Callable[[], object],
    *,
    batch: int = 0,
) -> Iterator[bytes]:
    """The body of a watch of ``resource``: headers at once (an empty first chunk), ``events``
    written by this thread, then what ``then(no event sent yet)`` gives.

    With ``batch``, events that never wait (a starting state read from the store) go out
    in writes of about that many bytes, the first one alone; each event is written at once
    otherwise (a relay, whose next event may be minutes away).

    Errors after the first byte cannot become a response any more; they end the stream
    with an ERROR event instead of a cut connection."""
    try:
        yield b""
        first = True
        pending: list[bytes] = []
        size = 0
        for event in events:
            line = render(event, first)
            watch_events_sent(resource, (line,))
            if first or not batch:
                yield line
            else:
                pending.append(line)
                size += len(line)
                if size >= batch:
                    yield b"".join(pending)
                    pending, size = [], 0
            first = False
        if pending:
            yield b"".join(pending)
        yield from then(first)
    except Exception:
        log.exception("watch stream failed")
        error = internal_error("the watch failed").status()
        yield b'{"type":"ERROR","object":%s}\n' % orjson.dumps(error)
    finally:
        cleanup()
