"""Render a kustomization as ``kubectl kustomize`` does (kubectl is part of the test image)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

Docs = list[dict[str, Any]]


def render(directory: Path) -> Docs:
    """The documents ``kubectl kustomize <directory>`` writes; fails the test on an error."""
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl is part of this project's test environment"
    out = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]
