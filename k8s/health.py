"""kube's health check answers (``/healthz``, ``/livez``, ``/readyz``), for the server's
endpoints (:class:`proxy.documents.Health`) and the controller's probes (:mod:`k8s.probes`).

``ok`` when every check passes; every check's line when asked (``verbose``) or when one fails,
then kube's last line (``readyz check failed``). A failing check's reason is withheld from the
answer, which anyone may read, and handed back to be logged.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

Check = Callable[[], str]
"""A check: "" when it passes, else why not."""


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    failed: tuple[str, ...]
    """The failing checks' names."""
    reasons: tuple[str, ...]
    """``[-]<check> failed: <why>`` for each failing check: for the log only."""


def answer(
    name: str, checks: Mapping[str, Check], *, exclude: Collection[str] = (), verbose: bool = False
) -> Answer:
    """The answer of the ``name`` endpoint (``healthz``...) running ``checks`` but those in
    ``exclude`` (each named one that is not a check gets kube's warning line)."""
    excluded = set(exclude)
    lines, failed, reasons = [], [], []
    for check, run in checks.items():
        if check in excluded:
            excluded.discard(check)
            lines.append(f"[+]{check} excluded: ok")
            continue
        why = run()
        if why:
            lines.append(f"[-]{check} failed: reason withheld")
            reasons.append(f"[-]{check} failed: {why}")
            failed.append(check)
        else:
            lines.append(f"[+]{check} ok")
    if excluded:
        names = ", ".join(f'"{check}"' for check in sorted(excluded))
        lines.append(f"warn: some health checks cannot be excluded: no matches for {names}")
    if failed:
        text = "\n".join([*lines, f"{name} check failed"]) + "\n"
        return Answer(text, tuple(failed), tuple(reasons))
    if verbose:
        return Answer("\n".join([*lines, f"{name} check passed"]) + "\n", (), ())
    return Answer("ok", (), ())
