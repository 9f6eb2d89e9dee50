"""The bench's export of an older revision: that revision's files, nothing of the work tree."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bench import baseline

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(repo: Path, *args: str) -> str:
    identity = ("-c", "user.name=bench", "-c", "user.email=bench@example.com")
    done = subprocess.run(
        ["git", "-C", str(repo), *identity, *args], capture_output=True, check=True, text=True
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose first commit has a Procfile and whose second removes it."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "Procfile").write_text("web: gunicorn app\n")
    (repo / "pkg").mkdir()
    (repo / "pkg" / "mod.py").write_text("OLD = 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    git(repo, "rm", "-q", "Procfile")
    git(repo, "commit", "-q", "-m", "second")
    (repo / "pkg" / "mod.py").write_text("NEW = 2\n")  # uncommitted work
    return repo


def test_export_writes_the_revision_and_leaves_the_work_tree_alone(
    repo: Path, tmp_path: Path
) -> None:
    into = tmp_path / "out"
    into.mkdir()
    (into / "stale.py").write_text("from an earlier run\n")
    commit = baseline.export(repo, "HEAD~1", into)
    assert commit == git(repo, "rev-parse", "--short=7", "HEAD~1")
    assert (into / "pkg" / "mod.py").read_text() == "OLD = 1\n"
    assert (into / "Procfile").read_text() == "web: gunicorn app\n"
    assert not (into / "stale.py").exists()
    assert (repo / "pkg" / "mod.py").read_text() == "NEW = 2\n"
    assert git(repo, "status", "--porcelain") == "M pkg/mod.py"


def test_a_revision_that_names_nothing_or_cannot_serve_is_refused(
    repo: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="revision"):
        baseline.resolve(repo, "no-such-rev")
    with pytest.raises(ValueError, match="no Procfile"):
        baseline.export(repo, "HEAD", tmp_path / "out")
