"""``python -m bench.instructions [--baseline REV]``: what one create and one get cost in CPU
instructions, counted by Valgrind's callgrind, for this work tree and an older revision.

Throughput on a shared machine moves by 10% from round to round, so a cost of a few percent
cannot be read from requests per second. An instruction count does not depend on the
neighbours: each side runs the app in process, through the WSGI call gunicorn makes, on a
fresh SQLite store (``warm`` creates first), once with ``small`` and once with ``large``
requests of one verb; the difference of the two totals divided by the difference of the
counts is the cost of one request, free of start-up. What it leaves out is the same for both
sides and outside the app: TLS, gunicorn's worker and its head parsing, the client.

Settings come from the environment's ``APISERVER_*`` variables (the store aside), for both
sides: ``APISERVER_AUDIT_POLICY_FILE=policy.yaml`` prices the audit log, say (with
``PROMETHEUS_MULTIPROC_DIR`` set, the metrics are kept in files, as under gunicorn).

Valgrind is a system package (``apt-get install valgrind``); the phase says so and stops
when it is missing. It takes a few minutes: the app runs about 50 times slower under it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import baseline

ROOT = Path(__file__).resolve().parent.parent
VERBS = ("create", "get")
_COLLECTED = re.compile(rb"Collected : (\d+)")
_PATH = "/apis/search.task.example.example.com/v1/namespaces/default/customtasks"


def drive(root: Path, verb: str, count: int, warm: int) -> None:
    """In this process: the app of ``root`` on a fresh store, ``warm`` creates, then
    ``count`` requests of ``verb``, each one WSGI call as gunicorn makes it."""
    sys.path.insert(0, str(root))
    os.chdir(root)
    import falcon.testing
    import orjson

    from bench.scenarios import task
    from proxy.app import create_app
    from proxy.settings import Settings

    class AllowAll:
        def authorize(self, user: object, info: object) -> Any:
            from proxy import authz

            return authz.Decision(True)

    store = Path(tempfile.mkdtemp()) / "store.db"
    chosen = {k: v for k, v in os.environ.items() if k.startswith("APISERVER_")}
    settings = Settings.from_env({**chosen, "APISERVER_SQLITE_PATH": str(store)})
    app = create_app(settings, authorizer=AllowAll())

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        return None

    def call(method: str, path: str, body: bytes = b"") -> None:
        environ = falcon.testing.create_environ(
            path=path, method=method, body=body, headers={"Content-Type": "application/json"}
        )
        for _ in app(environ, start_response):
            pass

    for i in range(warm):
        call("POST", _PATH, orjson.dumps(task(f"warm-{i}")))
    for i in range(count):
        if verb == "create":
            call("POST", _PATH, orjson.dumps(task(f"bench-{i}")))
        else:
            call("GET", f"{_PATH}/warm-{i % warm}")


def _instructions(root: Path, verb: str, count: int, warm: int) -> int:
    """The instructions of one driven run under callgrind."""
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-m",
            "bench.instructions",
            "--drive",
            str(root),
            verb,
            str(count),
            str(warm),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "0", "PYTHONMALLOC": "malloc"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=True,
    )
    found = _COLLECTED.search(done.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no count:\n{done.stderr.decode()[-2000:]}")
    return int(found.group(1))


def per_request(
    measure: Callable[[Path, str, int, int], int],
    roots: Iterable[Path],
    small: int,
    large: int,
    warm: int,
) -> dict[tuple[Path, str], float]:
    """Instructions per request for each root and verb, two runs each, run two at a time."""
    jobs = [(root, verb, n) for root in roots for verb in VERBS for n in (small, large)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = dict(
            zip(
                jobs, pool.map(lambda job: measure(job[0], job[1], job[2], warm), jobs), strict=True
            )
        )
    return {
        (root, verb): (counts[root, verb, large] - counts[root, verb, small]) / (large - small)
        for root, verb, _ in jobs
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--baseline", help="a revision to compare with (e.g. HEAD~3)")
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=600)
    parser.add_argument("--warm", type=int, default=200)
    parser.add_argument("--drive", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.drive:
        root, verb, count, warm = args.drive
        drive(Path(root), verb, int(count), int(warm))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind): nothing measured")
        return 1
    with tempfile.TemporaryDirectory() as scratch:
        roots = {"work tree": ROOT}
        if args.baseline:
            exported = Path(scratch) / "baseline"
            roots[baseline.export(ROOT, args.baseline, exported)] = exported
        costs = per_request(_instructions, roots.values(), args.small, args.large, args.warm)
    print(f"{'instructions per request':30s} " + " ".join(f"{n:>12s}" for n in roots))
    for verb in VERBS:
        row = " ".join(f"{costs[root, verb]:12,.0f}" for root in roots.values())
        print(f"{verb:30s} {row}")
    if args.baseline:
        (main_root, old_root), old_name = roots.values(), list(roots)[1]
        for verb in VERBS:
            ratio = costs[main_root, verb] / costs[old_root, verb]
            print(f"{verb}: work tree / {old_name} = {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
