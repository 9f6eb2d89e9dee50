"""Read a ``/metrics`` answer the way Prometheus does (prometheus-client's own parser of the
text format), as series keyed by name and labels."""

from __future__ import annotations

from collections.abc import Mapping

import requests
from prometheus_client.parser import text_string_to_metric_families

Series = tuple[str, frozenset[tuple[str, str]]]


def series(name: str, **labels: str) -> Series:
    """The key of one series."""
    return name, frozenset(labels.items())


def scrape(session: requests.Session, url: str) -> dict[Series, float]:
    """Every sample of one scrape of ``url``/metrics."""
    response = session.get(f"{url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(response.text)


def parse(text: str) -> dict[Series, float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def delta(
    before: Mapping[Series, float], after: Mapping[Series, float], name: str
) -> dict[frozenset[tuple[str, str]], float]:
    """How each series of ``name`` changed between two scrapes (unchanged ones left out)."""
    return {
        labels: value - before.get((n, labels), 0.0)
        for (n, labels), value in after.items()
        if n == name and value != before.get((n, labels), 0.0)
    }
