"""Field sets (server-side apply's FieldsV1): the set algebra, FieldsV1 both ways, and paths
printed as kube prints them, against structured-merge-diff's own golden data."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.api import fieldsets
from handlers.api.fieldsets import Path

# structured-merge-diff fieldpath/serialize_test.go, TestSerializeV1GoldenData: a set read
# from these bytes is written back to exactly these bytes (elements in kube's order: fields,
# keys, values (numbers, strings, booleans), indexes; "." for a member with children).
GOLDEN = (
    '{"f:aaa":{},"f:aab":{},"f:aac":{},"f:aad":{},"f:aae":{},"f:aaf":{},'
    '"k:{\\"name\\":\\"first\\"}":{},"k:{\\"name\\":\\"second\\"}":{},'
    '"k:{\\"port\\":443,\\"protocol\\":\\"tcp\\"}":{},"k:{\\"port\\":443,\\"protocol\\":\\"udp\\"}":{},'
    '"v:1":{},"v:2":{},"v:3":{},"v:\\"aa\\"":{},"v:\\"ab\\"":{},"v:true":{},'
    '"i:1":{},"i:2":{},"i:3":{},"i:4":{}}',
    '{"f:spec":{".":{},"f:apps":{".":{},"k:{\\"name\\":\\" app-💻\\"}":{".":{},'
    '"f:container":{".":{},"f:image":{},"f:name":{},"f:ports":{".":{},'
    '"k:{\\"name\\":\\"port 🔑\\"}":{".":{},"f:containerPort":{},"f:name":{}}}},"f:name":{}},'
    '"k:{\\"name\\":\\" app-🚀\\"}":{".":{},"f:container":{".":{},"f:image":{},"f:name":{},'
    '"f:ports":{".":{},"k:{\\"name\\":\\"port-✅ \\"}":{".":{},"f:containerPort":{},'
    '"f:name":{}}}},"f:name":{}}}}}',
)


@pytest.mark.parametrize("golden", GOLDEN)
def test_kubes_golden_fields_v1_round_trip_byte_for_byte(golden: str) -> None:
    paths = fieldsets.from_fields_v1(orjson.loads(golden))
    assert orjson.dumps(fieldsets.to_fields_v1(paths)).decode() == golden


def test_a_member_with_children_is_written_with_a_dot() -> None:
    paths = {("f:metadata", "f:labels"), ("f:metadata", "f:labels", "f:app")}
    assert fieldsets.to_fields_v1(paths) == {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}


def test_a_parent_that_is_not_a_member_has_no_dot() -> None:
    assert fieldsets.to_fields_v1({("f:spec", "f:priority")}) == {"f:spec": {"f:priority": {}}}


@pytest.mark.parametrize(
    "fields",
    [[], {"x:nope": {}}, {"f:spec": []}, {"k:{bad": {}}, {"i:x": {}}],
)
def test_what_is_not_fields_v1_is_refused(fields: object) -> None:
    with pytest.raises(ValueError):
        fieldsets.from_fields_v1(fields)


# paths as kube prints them in conflicts (fieldpath.Path.String)
@pytest.mark.parametrize(
    ("path", "printed"),
    [
        (("f:spec", "f:replicas"), ".spec.replicas"),
        (("f:metadata", "f:labels", "f:app"), ".metadata.labels.app"),
        (("f:metadata", "f:finalizers", 'v:"a/b"'), '.metadata.finalizers[="a/b"]'),
        (
            ("f:spec", "f:containers", 'k:{"name":"nginx"}', "f:image"),
            '.spec.containers[name="nginx"].image',
        ),
        (("f:ports", 'k:{"port":443,"protocol":"tcp"}'), '.ports[port=443,protocol="tcp"]'),
        (("f:args", "i:3"), ".args[3]"),
    ],
)
def test_paths_print_as_kubes(path: Path, printed: str) -> None:
    assert fieldsets.path_string(path) == printed


def test_a_levels_members_come_before_its_childrens_subtrees() -> None:
    paths = frozenset({("f:a", "f:b"), ("f:z",), ("f:c",), ("f:a", "f:a", "f:x")})
    assert fieldsets.iterate(paths) == [("f:c",), ("f:z",), ("f:a", "f:b"), ("f:a", "f:a", "f:x")]


ELEMENTS = st.one_of(
    st.sampled_from(["a", "b", "c.d", "é"]).map(lambda n: "f:" + n),
    st.sampled_from(["x", "y"]).map(lambda v: "k:" + orjson.dumps({"name": v}).decode()),
    st.one_of(st.integers(-3, 3), st.sampled_from(["p", "q"]), st.booleans()).map(
        lambda v: "v:" + orjson.dumps(v).decode()
    ),
    st.integers(0, 3).map(lambda i: f"i:{i}"),
)
PATHS = st.lists(ELEMENTS, min_size=1, max_size=4).map(tuple)
SETS = st.frozensets(PATHS, max_size=12)


@given(SETS)
def test_any_set_survives_fields_v1(paths: frozenset[Path]) -> None:
    assert fieldsets.from_fields_v1(fieldsets.to_fields_v1(paths)) == paths


@given(SETS, SETS)
def test_fields_v1_of_a_union_holds_both(a: frozenset[Path], b: frozenset[Path]) -> None:
    union = fieldsets.from_fields_v1(fieldsets.to_fields_v1(a | b))
    assert a <= union and b <= union
    assert union - a <= b


@given(SETS, SETS, SETS)
def test_the_algebra_holds(a: frozenset[Path], b: frozenset[Path], c: frozenset[Path]) -> None:
    assert (a - b) & b == fieldsets.EMPTY
    assert (a | b) - c == (a - c) | (b - c)
    assert a & (b | c) == (a & b) | (a & c)
    assert fieldsets.without_prefixes(a, [p for p in b]) <= a


@given(SETS)
def test_writing_is_independent_of_insertion_order(paths: frozenset[Path]) -> None:
    forward = orjson.dumps(fieldsets.to_fields_v1(sorted(paths)))
    backward = orjson.dumps(fieldsets.to_fields_v1(sorted(paths, reverse=True)))
    assert forward == backward


@given(SETS, PATHS)
def test_removing_a_prefix_removes_everything_under_it(
    paths: frozenset[Path], prefix: Path
) -> None:
    kept = fieldsets.without_prefixes(paths, [prefix])
    assert all(p[: len(prefix)] != prefix for p in kept)
    assert paths - kept == {p for p in paths if p[: len(prefix)] == prefix}
