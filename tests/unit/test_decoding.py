"""Request bodies: every format decoded with its limits enforced while decoding."""

from __future__ import annotations

import orjson
import pytest

from handlers.api.errors import ApiError
from proxy.decoding import MAX_DEPTH, MAX_VALUES, MAX_YAML_NODES, decode

YAML_TYPES = ("application/yaml", "application/apply-patch+yaml", "")


def refused(content_type: str, body: bytes) -> str:
    """The 400's message for ``body``."""
    with pytest.raises(ApiError) as error:
        decode(content_type, body, patch=content_type.startswith("application/apply"))
    assert (error.value.code, error.value.reason) == (400, "BadRequest")
    return error.value.message


def bomb(levels: int = 9, width: int = 9, indent: str = "") -> str:
    """The billion laughs: each level an array of ``width`` aliases of the one before."""
    lines = [f"{indent}l0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"{indent}l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("content_type", YAML_TYPES)
def test_a_yaml_alias_bomb_is_refused_at_the_top_level(content_type: str) -> None:
    assert "document contains excessive aliasing" in refused(content_type, bomb().encode())


@pytest.mark.parametrize("content_type", YAML_TYPES)
def test_a_yaml_alias_bomb_nested_under_status_or_managed_fields_is_refused(
    content_type: str,
) -> None:
    under_status = "metadata: {name: b}\nstatus:\n" + bomb(indent="  ")
    under_fields = "metadata:\n  name: b\n  managedFields:\n  - manager: m\n    fieldsV1:\n" + bomb(
        indent="      "
    )
    for body in (under_status, under_fields):
        assert "document contains excessive aliasing" in refused(content_type, body.encode())


def test_an_alias_that_contains_itself_is_refused() -> None:
    assert "contains an alias of itself" in refused("application/yaml", b"a: &a [1, *a]\n")


def test_modest_aliases_and_merge_keys_are_expanded_into_plain_values() -> None:
    body = b"base: &b {x: 1, y: [1, 2]}\ncopy: *b\nmerged:\n  <<: *b\n  z: 3\n"
    value = decode("application/yaml", body)
    assert value == {
        "base": {"x": 1, "y": [1, 2]},
        "copy": {"x": 1, "y": [1, 2]},
        "merged": {"x": 1, "y": [1, 2], "z": 3},
    }
    value["copy"]["y"].append(3)  # a tree, not shared references: one change stays put
    assert value["base"]["y"] == [1, 2]


def nested(depth: int, open_: str = "[", close: str = "]") -> bytes:
    return (open_ * depth + close * depth).encode()


@pytest.mark.parametrize("content_type", ("application/json", *YAML_TYPES))
def test_100000_levels_of_nesting_get_400_not_a_recursion_error(content_type: str) -> None:
    for body in (nested(100_000), b'{"a": ' + nested(100_000) + b"}"):
        message = refused(content_type, body)
        assert "nest" in message or "depth" in message


@pytest.mark.parametrize("content_type", ("application/json", "application/yaml"))
def test_the_depth_limit_admits_its_own_depth_and_refuses_one_more(content_type: str) -> None:
    assert decode(content_type, nested(MAX_DEPTH)) == orjson.loads(nested(MAX_DEPTH))
    assert f"more than {MAX_DEPTH} deep" in refused(content_type, nested(MAX_DEPTH + 1))


def test_block_yaml_nested_through_aliases_counts_the_expanded_depth() -> None:
    chain = "a0: &a0 " + "[" * 60 + "]" * 60 + "\n"
    chain += "a1: &a1 " + "[" * 50 + "*a0" + "]" * 50 + "\n"
    assert f"more than {MAX_DEPTH} deep" in refused("application/yaml", chain.encode())


def test_a_lone_surrogate_in_yaml_is_refused() -> None:
    assert "YAML" in refused("application/yaml", b'details: "\\ud800"\n')


def test_invalid_utf8_is_refused_in_json_and_yaml() -> None:
    assert "JSON" in refused("application/json", b'{"a": "\xff"}')
    assert "YAML" in refused("application/yaml", b"a: \xff\xfe\n")


def test_a_json_lone_surrogate_escape_is_refused() -> None:
    assert "JSON" in refused("application/json", b'{"a": "\\ud800"}')


def test_yaml_values_json_cannot_carry_are_refused() -> None:
    assert "JSON cannot carry" in refused("application/yaml", b"a: !!binary aGVsbG8=\n")
    assert "JSON cannot carry" in refused("application/yaml", b"a: !!set {x, y}\n")


def test_yaml_keys_that_are_not_strings_become_strings_as_in_kubernetes() -> None:
    assert decode("application/yaml", b"2: a\ntrue: b\n") == {"2": "a", "true": "b"}


def test_yaml_timestamps_stay_strings() -> None:
    assert decode("application/yaml", b"t: 2025-08-19T09:17:55Z\n") == {"t": "2025-08-19T09:17:55Z"}


def test_a_json_body_sent_as_yaml_is_read_as_json() -> None:
    """kubectl sends server-side apply configurations as JSON under the YAML patch type."""
    body = orjson.dumps({"a": [1, {"b": None}], "t": "2025-08-19T09:17:55Z"})
    assert decode("application/apply-patch+yaml", body, patch=True) == orjson.loads(body)
    assert decode("application/yaml", b"{a: 1, b: [x]}") == {"a": 1, "b": ["x"]}  # flow YAML


def values(count: int) -> bytes:
    return b"[" + b",".join([b"0"] * count) + b"]"


def test_json_with_more_values_than_the_limit_is_refused_before_decoding() -> None:
    assert f"more than {MAX_VALUES} values" in refused("application/json", values(MAX_VALUES + 1))
    assert len(decode("application/json", values(MAX_VALUES - 10))) == MAX_VALUES - 10


def test_commas_and_colons_inside_strings_are_not_values() -> None:
    text = ",:[" * MAX_VALUES
    assert decode("application/json", orjson.dumps({"a": text})) == {"a": text}


def test_yaml_with_more_nodes_than_the_limit_is_refused() -> None:
    block = b"".join(b"- %d\n" % i for i in range(MAX_YAML_NODES + 1))
    assert f"more than {MAX_YAML_NODES} YAML nodes" in refused("application/yaml", block)
