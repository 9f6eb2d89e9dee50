"""A background thread per process that trims the change log on a fixed period.

Keeping at least five minutes and 1,000 revisions mirrors kube-apiserver's etcd compaction
and kine's minimum; continue tokens and watches older than that get 410 Expired.
"""

from __future__ import annotations

import logging
import threading
import time

from store import Compacted, Store

log = logging.getLogger("apiserver.store")

MIN_AGE_SECONDS = 300.0
MIN_REVISIONS = 1000


def compact_and_report(store: Store) -> Compacted | None:
    """One compaction, with a log line of what it removed and how long it took."""
    started = time.perf_counter()
    try:
        done = store.compact(min_age_seconds=MIN_AGE_SECONDS, min_revisions=MIN_REVISIONS)
    except Exception:
        log.exception("compaction failed")
        return None
    seconds = time.perf_counter() - started
    log.info(
        "compacted the change log to revision %d: %d entries removed in %.3f s",
        done.revision,
        done.removed,
        seconds,
        extra={"fields": {"revision": done.revision, "removed": done.removed, "seconds": seconds}},
    )
    return done


def start_compactor(
    store: Store, stop: threading.Event, period_seconds: float = 60.0
) -> threading.Thread:
    """Compact ``store`` every ``period_seconds`` in a daemon thread, until ``stop`` is set."""

    def run() -> None:
        while not stop.wait(period_seconds):
            compact_and_report(store)

    thread = threading.Thread(target=run, name="store-compactor", daemon=True)
    thread.start()
    return thread
