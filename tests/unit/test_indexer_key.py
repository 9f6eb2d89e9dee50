"""The key ``details`` answers a Task by, which the controller writes in the Task's
``example.example.com/task-indexer`` label: the tutorial's ``<namespace>.<name>.<generation>``
while it fits a label value, a shortened unique key when it would not (tutorial defect: a long
name made the label invalid and the Task could no longer be saved)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from k8s.taskindex import indexer_key

LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
"""k8s.io/apimachinery validation: "a valid label must be an empty string or consist of
alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric
character" and "must be no more than 63 characters"."""

DNS_LABEL = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True)


def test_the_tutorials_key_while_it_fits() -> None:
    assert indexer_key("default", "task-sample-4", 3) == "default.task-sample-4.3"
    assert indexer_key("", "cluster-one", 1) == "cluster-one.1"  # a ClusterTask


def test_a_60_character_name_and_namespace_give_a_valid_label_value() -> None:
    namespace, name = "n" * 60, "t" * 60
    key = indexer_key(namespace, name, 7)
    assert len(key) <= 63 and LABEL_VALUE.fullmatch(key)
    assert key.startswith("n" * 20) and key.endswith(".7")
    assert key != indexer_key(namespace, "t" * 59 + "u", 7)  # the hash tells them apart
    assert key != indexer_key(namespace, name, 8)


@given(DNS_LABEL, DNS_LABEL, st.integers(min_value=1, max_value=2**63 - 1))
def test_every_key_is_a_label_value(namespace: str, name: str, generation: int) -> None:
    key = indexer_key(namespace, name, generation)
    assert len(key) <= 63 and LABEL_VALUE.fullmatch(key), key
    assert key.endswith(f".{generation}")
