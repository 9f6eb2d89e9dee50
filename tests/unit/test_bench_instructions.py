"""The bench's instruction count: one request's cost is the difference of two runs, free of
start-up, and the driver serves real creates and gets through the app."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from bench import instructions

ROOT = Path(instructions.__file__).resolve().parent.parent


def test_one_requests_cost_is_the_difference_of_two_runs_over_their_difference() -> None:
    startup = {"old": 5_000_000, "new": 7_000_000}  # start-up differs; it must not count
    cost = {
        ("old", "create"): 800,
        ("old", "get"): 300,
        ("new", "create"): 820,
        ("new", "get"): 290,
    }

    def measure(root: Path, verb: str, count: int, warm: int) -> int:
        assert warm == 7
        return startup[root.name] + warm * 800 + count * cost[root.name, verb]

    found = instructions.per_request(measure, [Path("old"), Path("new")], 10, 60, 7)
    assert found == {(Path(r), v): float(c) for (r, v), c in cost.items()}


def test_the_driver_serves_its_requests_through_the_app(tmp_path: Path) -> None:
    for verb in instructions.VERBS:
        done = subprocess.run(
            [sys.executable, "-m", "bench.instructions", "--drive", str(ROOT), verb, "3", "2"],
            cwd=ROOT,
            env={**os.environ, "APISERVER_REQUEST_LOG": "all"},  # a line for each request
            capture_output=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        log = [orjson.loads(line) for line in done.stdout.splitlines() if line.startswith(b"{")]
        served = 201 if verb == "create" else 200
        assert [(e["verb"], e["code"]) for e in log] == [("create", 201)] * 2 + [(verb, served)] * 3
