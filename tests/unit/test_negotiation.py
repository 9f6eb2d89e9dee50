"""R2: the Accept walk and request-body decoding."""

from __future__ import annotations

import pytest

from handlers.api.errors import ApiError
from proxy.decoding import decode as decode_body
from proxy.negotiation import Output, negotiate

KUBECTL_GET = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)
METADATA_LIST = (
    "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,"
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
)


@pytest.mark.parametrize(
    ("accept", "listing", "expected"),
    [
        (None, False, Output("object")),
        ("application/json", True, Output("object")),
        ("application/json, */*", False, Output("object")),
        ("*/*", True, Output("object")),
        ("application/yaml", False, Output("object", "application/yaml")),
        (KUBECTL_GET, True, Output("table", "application/json", "v1")),
        (
            "application/json;as=Table;v=v1beta1;g=meta.k8s.io",
            False,
            Output("table", "application/json", "v1beta1"),
        ),
        (METADATA_LIST, True, Output("metadata", "application/json", "v1")),
        (METADATA_LIST, False, Output("object")),
        ("application/vnd.kubernetes.protobuf,application/json", False, Output("object")),
        ("application/json;as=Widget;g=meta.k8s.io;v=v1,application/json", False, Output("object")),
    ],
)
def test_first_acceptable_alternative_wins(
    accept: str | None, listing: bool, expected: Output
) -> None:
    assert negotiate(accept, listing=listing) == expected


def test_nothing_acceptable_is_406() -> None:
    with pytest.raises(ApiError) as caught:
        negotiate("application/vnd.kubernetes.protobuf, text/html", listing=False)
    assert (caught.value.code, caught.value.reason) == (406, "NotAcceptable")


def test_bodies_are_json_or_yaml_with_or_without_content_type() -> None:
    assert decode_body("application/json", b'{"a": 1}') == {"a": 1}
    assert decode_body(None, b'  {"a": 1}') == {"a": 1}
    assert decode_body("", b"a: 2025-08-19T09:17:55Z\nb: 3\n") == {
        "a": "2025-08-19T09:17:55Z",
        "b": 3,
    }
    assert decode_body("application/yaml; charset=utf-8", b"a: [1, 2]") == {"a": [1, 2]}
    assert decode_body("application/json", b"  ") is None


@pytest.mark.parametrize(
    ("content_type", "body", "code"),
    [
        ("application/json", b"{", 400),
        (None, b"a: [", 400),
        ("text/plain", b"{}", 415),
        ("application/merge-patch+json", b"{}", 415),
    ],
)
def test_bad_bodies(content_type: str | None, body: bytes, code: int) -> None:
    with pytest.raises(ApiError) as caught:
        decode_body(content_type, body)
    assert caught.value.code == code


def test_patch_bodies_need_a_patch_type() -> None:
    assert decode_body("application/merge-patch+json", b'{"a":null}', patch=True) == {"a": None}
    assert decode_body("application/json-patch+json", b"[]", patch=True) == []
    for content_type in ("application/strategic-merge-patch+json", "application/json", None):
        with pytest.raises(ApiError) as caught:
            decode_body(content_type, b"{}", patch=True)
        assert caught.value.code == 415
