"""The controller phase: how fast the Task controller works through a cluster's backlog, and
how soon it handles a live change meanwhile.

A fake kube-apiserver in this process holds 10,000 Tasks that no controller has seen; the
controller runs as deployed (the Procfile's command, a process of its own, leader election
on) with 1 worker, then with 4, each run against a fresh fake. Each task's first reconcile is
two writes (its Event, then its finalizer and labels); the fake stamps every write, so the
rate is the Tasks over the time from the first write to the last, and the startup (list,
lease) is reported apart. While the backlog drains, a new Task is created every
:data:`LIVE_EVERY` seconds: its latency is from its creation to its Event. The targets are
issue 18's.
"""

from __future__ import annotations

import bisect
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.report import Goal, percentile
from bench.scale import Line
from devtools.launch import ROOT
from tests.fakes.cluster import FakeCluster
from tests.fakes.objects import TASKS, Change

BACKLOG = 10_000
NAMESPACE = "bench-controller"
LIVE_EVERY = 0.1
RATE = Goal(400.0, at_least=True)
LIVE_P99 = Goal(1000.0, at_least=False)
TIMEOUT = 300.0


@dataclass(frozen=True, slots=True)
class Run:
    workers: int
    startup: float  # seconds from the process's start to its first write
    drain: float  # seconds from the first write to the backlog's last
    live: list[float]  # seconds from a live task's creation to its Event
    cpu: float  # CPU seconds of the controller process
    fake_cpu: float  # CPU seconds of this process: the fake cluster, mostly


def run(directory: Path, say: Callable[[str], None], backlog: int = BACKLOG) -> list[Line]:
    """The phase's figures, from fake clusters and controller processes under ``directory``."""
    runs = []
    for workers in (1, 4):
        say(f"controller: {backlog:,} tasks with {workers} worker(s), live tasks meanwhile")
        runs.append(_run(directory / f"workers-{workers}", workers, backlog))
    lines = []
    for one in runs:
        rate = backlog / one.drain
        lines.append(
            Line(
                f"first reconcile of {backlog:,} tasks, {one.workers} worker(s)",
                rate,
                "tasks/s",
                RATE if one.workers == 4 else None,
                note=f"{one.drain:.1f} s from the first write to the last, after "
                f"{one.startup:.1f} s of start (list, lease); CPU s: controller "
                f"{one.cpu:.1f}, fake cluster {one.fake_cpu:.1f}",
            )
        )
    for one in runs:
        latencies = sorted(one.live)
        lines.append(
            Line(
                f"live change during the backlog, p99, {one.workers} worker(s)",
                percentile(latencies, 99) * 1000,
                "ms",
                LIVE_P99 if one.workers == 4 else None,
                note=f"{len(latencies)} new tasks, creation to Event; p50 "
                f"{statistics.median(latencies) * 1000:.0f} ms",
            )
        )
    return lines


def _run(directory: Path, workers: int, backlog: int) -> Run:
    directory.mkdir(parents=True, exist_ok=True)
    with FakeCluster() as fake:
        fake.objects.bookmark_seconds = 60.0
        for n in range(backlog):
            fake.objects.put(TASKS, _task(f"backlog-{n:05d}"))
        filled = fake.objects.revision
        env = {
            **os.environ,
            "APISERVER_KUBECONFIG": str(fake.kubeconfig(directory)),
            "APISERVER_CONTROLLER_WORKERS": str(workers),
            "APISERVER_CONTROLLER_PROBE_ADDRESS": "127.0.0.1:0",
            "APISERVER_CONTROLLER_LEASE_NAMESPACE": "default",
        }
        stop = threading.Event()
        with (directory / "controller.log").open("wb") as log:
            started = time.monotonic()
            process = subprocess.Popen(
                [sys.executable, "-m", "k8s.controller"], cwd=ROOT, env=env, stderr=log
            )
            live = threading.Thread(target=_live, args=(fake, stop), daemon=True)
            own = os.times()
            try:
                done = _wait(fake, filled, backlog, started, live)
                cpu = _cpu(process.pid)
                mine = os.times()
                fake_cpu = mine.user + mine.system - own.user - own.system
            finally:
                stop.set()
                process.terminate()
                process.wait(30)
        history = _since(fake, filled)
    first = min(c.at for c in history if c.plural != "leases")
    events = {
        c.obj["involvedObject"]["name"]: c.at
        for c in history
        if c.plural == "events" and c.type == "ADDED"
    }
    created = {
        c.obj["metadata"]["name"]: c.at
        for c in history
        if c.plural == "tasks" and c.type == "ADDED" and c.at < done
    }
    latencies = [events[name] - at for name, at in created.items() if name in events]
    return Run(workers, first - started, done - first, latencies, cpu, fake_cpu)


def _task(name: str) -> dict[str, object]:
    return {
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"priority": 3, "deadline": "2030-01-01T00:00:00Z", "details": "Rebuild."},
    }


def _live(fake: FakeCluster, stop: threading.Event) -> None:
    """A new task every LIVE_EVERY seconds (the fake stamps its creation)."""
    n = 0
    while not stop.wait(LIVE_EVERY):
        fake.objects.put(TASKS, _task(f"live-{n:05d}"))
        n += 1


def _wait(
    fake: FakeCluster, filled: int, backlog: int, started: float, live: threading.Thread
) -> float:
    """When the last backlog task has both its Event and its patch (polled: the fake's own
    commit times are what counts)."""
    seen = filled
    events: set[str] = set()
    patched: set[str] = set()
    last = 0.0
    while len(events & patched) < backlog:
        if time.monotonic() - started > TIMEOUT:
            raise RuntimeError(f"the controller did not finish in {TIMEOUT:.0f} s")
        time.sleep(0.05)
        for change in _since(fake, seen):
            seen = change.revision
            if change.plural == "events":
                name = change.obj["involvedObject"]["name"]
                events.add(name)
            elif change.plural == "tasks" and change.type == "MODIFIED":
                name = change.obj["metadata"]["name"]
                patched.add(name)
                if not live.ident and name.startswith("backlog-"):
                    live.start()  # live tasks once the backlog is being worked through
            else:
                continue
            if name.startswith("backlog-"):
                last = max(last, change.at)
    return last


def _cpu(pid: int) -> float:
    """CPU seconds (user and system) ``pid`` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _since(fake: FakeCluster, revision: int) -> list[Change]:
    with fake.objects.changed:
        history = fake.objects.history
        return history[bisect.bisect_right(history, revision, key=lambda c: c.revision) :]


def title() -> str:
    return f"Controller: the first reconcile of {BACKLOG:,} Tasks, and live changes meanwhile"
