"""A3-A7 pieces in isolation: header parsing, CA checks, review specs, readiness reasons."""

from __future__ import annotations

import pytest

from devtools.certs import issue, new_ca
from handlers.api.users import User
from proxy.authconfig import AuthConfigSource, RequestHeader, from_configmap
from proxy.authn import front_proxy_user, issued_by, token_user, x509_user
from proxy.authz import forbidden_error, review_spec
from proxy.requestinfo import parse

HEADER = RequestHeader(
    cas=(),
    allowed_names=frozenset(),
    username_headers=("X-Remote-User",),
    group_headers=("X-Remote-Group",),
    extra_prefixes=("X-Remote-Extra-",),
    uid_headers=("X-Remote-Uid",),
)


def test_a3_front_proxy_headers_as_wsgi_presents_them() -> None:
    environ = {
        "HTTP_X_REMOTE_USER": "bob",
        "HTTP_X_REMOTE_GROUP": "a, b,system:authenticated",
        "HTTP_X_REMOTE_EXTRA_ACME.COM%2FPROJECT": "p1,p2",
        "HTTP_X_REMOTE_EXTRA_SCOPES": "read",
        "HTTP_X_REMOTE_UID": "u1",
    }
    user = front_proxy_user(environ, HEADER)
    assert user == User(
        "bob",
        ("a", "b", "system:authenticated"),
        "u1",
        {"acme.com/project": ("p1", "p2"), "scopes": ("read",)},
    )
    assert front_proxy_user({"HTTP_X_REMOTE_GROUP": "a"}, HEADER) is None


def test_a3_issuer_validity_and_client_auth_are_checked() -> None:
    ca, other = new_ca("ca"), new_ca("other")
    good = issue(ca, "proxy", client=True).cert
    assert issued_by(good, (other.cert, ca.cert))
    assert not issued_by(good, (other.cert,))
    assert not issued_by(issue(ca, "old", client=True, valid_days=-1).cert, (ca.cert,))
    assert not issued_by(issue(ca, "srv", server=True).cert, (ca.cert,))
    impostor = issue(other, "proxy", client=True).cert  # same CN, other CA
    assert not issued_by(impostor, (ca.cert,))


def test_a4_x509_user_is_cn_and_organizations() -> None:
    ca = new_ca("ca")
    user = x509_user(issue(ca, "alice", organizations=["devs", "ops"], client=True).cert)
    assert user is not None
    assert (user.name, user.groups) == ("alice", ("devs", "ops", "system:authenticated"))
    [credential] = user.extra["authentication.kubernetes.io/credential-id"]
    assert credential.startswith("X509SHA256=")


def test_a5_token_review_status_to_user() -> None:
    assert token_user({"authenticated": False}) is None
    user = token_user(
        {"authenticated": True, "user": {"username": "sa", "groups": ["g"], "extra": {"k": ["v"]}}}
    )
    assert user == User("sa", ("g", "system:authenticated"), "", {"k": ("v",)})


def test_a7_review_spec_maps_verbs_and_names_like_kube() -> None:
    user = User("u", ("g",))
    info = parse(
        "GET",
        "/apis/search.task.example.example.com/v1/namespaces/ns/customtasks",
        {"watch": "true", "fieldSelector": "metadata.name=x"},
    )
    spec = review_spec(user, info)
    assert spec["resourceAttributes"] == {
        "namespace": "ns",
        "verb": "watch",
        "group": "search.task.example.example.com",
        "version": "v1",
        "resource": "customtasks",
        "subresource": "",
        "name": "x",
    }
    for method, path, verb in [
        ("DELETE", "/apis/g/v1/clustertasks", "deletecollection"),
        ("DELETE", "/apis/g/v1/clustertasks/a", "delete"),
        ("PATCH", "/apis/g/v1/clustertasks/a", "patch"),
        ("POST", "/apis/g/v1/clustertasks", "create"),
        ("PUT", "/apis/g/v1/clustertasks/a", "update"),
        ("GET", "/apis/g/v1/clustertasks", "list"),
    ]:
        assert review_spec(user, parse(method, path, {}))["resourceAttributes"]["verb"] == verb
    assert review_spec(user, parse("GET", "/openapi/v2", {}))["nonResourceAttributes"] == {
        "path": "/openapi/v2",
        "verb": "get",
    }


def test_a7_forbidden_wording_for_paths_and_cluster_scope() -> None:
    user = User("u")
    assert forbidden_error(user, parse("GET", "/openapi/v2", {})).message == (
        'forbidden: User "u" cannot get path "/openapi/v2"'
    )
    error = forbidden_error(user, parse("DELETE", "/apis/g/v1/clustertasks/a", {}), "nope")
    assert error.message == (
        'clustertasks.g "a" is forbidden: User "u" cannot delete resource "clustertasks" in API '
        'group "g" at the cluster scope: nope'
    )
    assert error.details == {"name": "a", "group": "g", "kind": "clustertasks"}


def test_a2_configmap_lists_are_json_arrays_and_the_front_proxy_ca_is_required() -> None:
    ca = new_ca("fp")
    config = from_configmap(
        {
            "requestheader-client-ca-file": ca.cert_pem.decode(),
            "requestheader-allowed-names": '["front-proxy-client"]',
        }
    )
    assert config.request_header is not None
    assert config.request_header.allowed_names == {"front-proxy-client"}
    assert config.request_header.username_headers == ("X-Remote-User",)
    assert config.client_cas == ()
    with pytest.raises(ValueError, match="requestheader-client-ca-file"):
        from_configmap({"client-ca-file": ca.cert_pem.decode()})


def test_a2_readiness_says_why_the_configuration_is_missing() -> None:
    def load() -> object:
        raise ValueError("cluster unreachable")

    source = AuthConfigSource(load, refresh_seconds=0)  # type: ignore[arg-type]
    assert source.check() == "cluster unreachable"
    assert source.current is None


def test_a7_concurrent_identical_reviews_are_made_once_and_cached() -> None:
    import threading
    import time

    from proxy.authz import SubjectAccessReviews

    calls: list[object] = []

    def review(spec: object) -> dict[str, object]:
        calls.append(spec)
        time.sleep(0.2)
        return {"allowed": True}

    authorizer = SubjectAccessReviews(review, ttl=10)
    info = parse("GET", "/apis/g/v1/clustertasks", {})
    results: list[bool] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(authorizer.authorize(User("u"), info).allowed)
        )
        for _ in range(50)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 50
    assert len(calls) == 1
    assert authorizer.authorize(User("other"), info).allowed and len(calls) == 2


def test_a7_denied_answers_are_cached_and_errors_refuse() -> None:
    from handlers.api.errors import ApiError
    from proxy.authz import SubjectAccessReviews

    answers = iter([{"allowed": True, "denied": True, "reason": "both"}])
    authorizer = SubjectAccessReviews(lambda spec: next(answers), ttl=10)
    info = parse("GET", "/apis/g/v1/clustertasks", {})
    assert authorizer.authorize(User("u"), info).allowed is False  # denied wins
    assert authorizer.authorize(User("u"), info).reason == "both"  # from the cache

    def broken(spec: object) -> dict[str, object]:
        raise ConnectionError("cluster down")

    with pytest.raises(ApiError) as caught:
        SubjectAccessReviews(broken, ttl=10).authorize(User("u"), info)
    assert caught.value.code == 500
