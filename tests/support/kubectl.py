"""Every ``kubectl.1.NN`` beside the ``kubectl`` on PATH, and a way to run one against a server.

The ``kubectl`` on PATH may be a dispatcher that picks a binary by the server's version, so
the versioned binaries are called directly, each test with its own ``--cache-dir``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.servers import Server

TIMEOUT = 60  # seconds for one kubectl run


def _client_version(binary: Path) -> str:
    """``1.NN`` as reported by a kubectl binary itself."""
    out = subprocess.run(
        [str(binary), "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    ).stdout
    client = json.loads(out)["clientVersion"]
    return f"{client['major']}.{re.sub(r'[^0-9]', '', client['minor'])}"


def _binaries() -> dict[str, Path]:
    """The ``kubectl.1.NN`` beside the ``kubectl`` on PATH, by version; else that kubectl."""
    found = shutil.which("kubectl")
    if found is None:
        return {}
    plain = Path(found).resolve()
    versioned = {
        match.group(1): path
        for path in plain.parent.iterdir()
        if (match := re.fullmatch(r"kubectl\.(1\.\d+)", path.name)) and path.is_file()
    }
    if not versioned:  # a real kubectl rather than a dispatcher
        return {_client_version(plain): plain}
    return dict(sorted(versioned.items(), key=lambda item: int(item[0].split(".")[1])))


BINARIES = _binaries()


class _QuotingDumper(yaml.SafeDumper):
    """Quotes every string: kubectl reads YAML 1.1, where a bare ``y`` is a boolean."""

    def represent_str(self, data: str) -> yaml.ScalarNode:
        return self.represent_scalar("tag:yaml.org,2002:str", data, style='"')


_QuotingDumper.add_representer(str, _QuotingDumper.represent_str)


@dataclass(frozen=True)
class Kubectl:
    """One kubectl version, talking to the test server with a private cache and work dir."""

    version: str
    binary: Path
    kubeconfig: str
    workdir: Path
    server: Server

    @property
    def tag(self) -> str:
        """The version as a name part: ``1-29``."""
        return self.version.replace(".", "-")

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.binary), "--kubeconfig", self.kubeconfig]
        command += ["--cache-dir", str(self.workdir / "cache"), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)

    def ok(self, *args: str) -> str:
        """Run; it must succeed. Returns stdout."""
        result = self.run(*args)
        assert result.returncode == 0, describe(result)
        return result.stdout

    def fails(self, *args: str) -> str:
        """Run; it must fail. Returns stdout and stderr."""
        result = self.run(*args)
        assert result.returncode != 0, describe(result)
        return result.stdout + result.stderr

    def write(self, filename: str, *docs: dict[str, Any]) -> str:
        """A manifest file, JSON or (multi-document) YAML by its extension."""
        path = self.workdir / filename
        if path.suffix == ".json":
            assert len(docs) == 1
            path.write_text(json.dumps(docs[0], indent=2))
        else:
            path.write_text(yaml.dump_all(docs, Dumper=_QuotingDumper))
        return str(path)


def describe(result: subprocess.CompletedProcess[str]) -> str:
    return f"{result.args}\nexit {result.returncode}\n{result.stdout}\n{result.stderr}"


def table(out: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of kubectl's column output, split on runs of spaces."""
    lines = [re.split(r"\s{2,}", line.strip()) for line in out.splitlines() if line.strip()]
    assert lines, "no output"
    return lines[0], lines[1:]
