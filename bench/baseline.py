"""An older revision of this repository, exported so that its server runs beside this one's.

What a change costs is best read against the old code's figures from the same run, on the
same machine at the same moment, not against numbers from another day. The revision's files
come from ``git archive``: no checkout, worktree or index change touches the work tree, which
may hold uncommitted work. Its server then runs from those files with this environment's
interpreter and packages (see :func:`devtools.launch.run_web`'s ``root``).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

__all__ = ["export", "resolve"]


def _git(repo: Path, *args: str) -> bytes:
    """A git command's output; ValueError with git's own message if it fails."""
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    except OSError as ex:  # no git at all
        raise ValueError(f"git: {ex}") from ex
    if done.returncode:
        raise ValueError(done.stderr.decode(errors="replace").strip() or f"git {args[0]} failed")
    return done.stdout


def resolve(repo: Path, rev: str) -> str:
    """The abbreviated commit that ``rev`` names in ``repo``; ValueError if it names none."""
    return (
        _git(repo, "rev-parse", "--short=7", "--verify", "--end-of-options", f"{rev}^{{commit}}")
        .decode()
        .strip()
    )


def export(repo: Path, rev: str, into: Path) -> str:
    """Write the files of ``rev`` (and nothing else) into ``into``; return its abbreviated
    commit. A directory left from an earlier run is replaced; a revision without a
    Procfile is refused, as nothing could start its server."""
    commit = resolve(repo, rev)
    archive = _git(repo, "archive", "--format=tar", commit)
    if into.exists():
        shutil.rmtree(into)
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        tar.extractall(into, filter="data")
    if not (into / "Procfile").is_file():
        raise ValueError(f"{rev} ({commit}) has no Procfile")
    return commit
