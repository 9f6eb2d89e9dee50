"""Run one process type of the Procfile, so ``make run`` starts exactly what is deployed."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def command(process: str, procfile: Path = Path("Procfile")) -> str:
    """The command line of ``process`` in the Procfile."""
    for line in procfile.read_text().splitlines():
        name, sep, cmd = line.partition(":")
        if sep and name.strip() == process:
            return cmd.strip()
    raise SystemExit(f"no {process!r} process in {procfile}")


def main() -> None:
    """``python -m devtools.procfile web``: replace this process with the web command."""
    os.execvp("sh", ["sh", "-c", "exec " + command(sys.argv[1] if len(sys.argv) > 1 else "web")])


if __name__ == "__main__":
    main()
