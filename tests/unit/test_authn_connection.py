"""A connection's certificate is checked once per trust configuration, and what it proves
still holds only while the certificate is valid and the trusts are the same."""

from __future__ import annotations

import ssl
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from devtools.certs import Issued, issue, new_ca
from devtools.launch import Pki
from handlers.api.errors import ApiError
from proxy import authn, tls
from proxy.authconfig import AuthConfig, RequestHeader

FRONT_PROXY = "front-proxy-client"


class Socket:
    """A TLS socket as gunicorn puts it in the environ: its peer's certificate, counted."""

    def __init__(self, cert: Issued) -> None:
        self.der = cert.cert.public_bytes(Encoding.DER)
        self.asked = 0

    def getpeercert(self, binary_form: bool = False) -> bytes:
        self.asked += 1
        return self.der


def _config(client_ca: Issued, proxy_ca: Issued | None = None) -> AuthConfig:
    header = None
    if proxy_ca is not None:
        header = RequestHeader(
            cas=(proxy_ca.cert,),
            allowed_names=frozenset({FRONT_PROXY}),
            username_headers=("X-Remote-User",),
            group_headers=("X-Remote-Group",),
            extra_prefixes=("X-Remote-Extra-",),
            uid_headers=(),
        )
    return AuthConfig((client_ca.cert,), header)


def _refused(authenticator: authn.Authenticator, environ: dict[str, object]) -> int:
    with pytest.raises(ApiError) as refused:
        authenticator.authenticate(environ)
    return refused.value.code


def test_a_connection_certificate_is_checked_on_its_first_request_only() -> None:
    ca = new_ca("client-ca")
    sock = Socket(issue(ca, "alice", organizations=["devs"], client=True))
    config = _config(ca)
    authenticator = authn.Authenticator(lambda: config, None)
    users = [authenticator.authenticate({"gunicorn.socket": sock}) for _ in range(3)]
    assert {(u.name, u.groups) for u in users} == {("alice", ("devs", "system:authenticated"))}
    assert sock.asked == 1
    other = Socket(issue(ca, "bob", client=True))  # another connection is checked afresh
    assert authenticator.authenticate({"gunicorn.socket": other}).name == "bob"
    assert other.asked == 1


def test_new_trusts_check_the_connection_again() -> None:
    ca, rotated = new_ca("client-ca"), new_ca("rotated-ca")
    sock = Socket(issue(ca, "alice", client=True))
    current = [_config(ca)]
    authenticator = authn.Authenticator(lambda: current[0], None)
    assert authenticator.authenticate({"gunicorn.socket": sock}).name == "alice"
    current[0] = _config(rotated)  # the old CA is no longer trusted
    assert _refused(authenticator, {"gunicorn.socket": sock}) == 401
    assert sock.asked == 2


def test_a_certificate_that_expires_during_the_connection_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ca = new_ca("client-ca")
    cert = issue(ca, "alice", client=True, valid_days=1)
    sock = Socket(cert)
    config = _config(ca)
    authenticator = authn.Authenticator(lambda: config, None)
    assert authenticator.authenticate({"gunicorn.socket": sock}).name == "alice"
    later = cert.cert.not_valid_after_utc.timestamp() + 1
    monkeypatch.setattr(authn, "time", SimpleNamespace(time=lambda: later))
    assert _refused(authenticator, {"gunicorn.socket": sock}) == 401


def test_the_front_proxy_asserts_a_user_per_request_on_one_checked_connection() -> None:
    client_ca, proxy_ca = new_ca("client-ca"), new_ca("front-proxy-ca")
    sock = Socket(issue(proxy_ca, FRONT_PROXY, client=True))
    config = _config(client_ca, proxy_ca)
    authenticator = authn.Authenticator(lambda: config, None)
    for name in ("alice", "bob"):
        environ = {"gunicorn.socket": sock, "HTTP_X_REMOTE_USER": name, "HTTP_X_REMOTE_GROUP": "g"}
        user = authenticator.authenticate(environ)
        assert (user.name, user.groups) == (name, ("g", "system:authenticated"))
    assert sock.asked == 1
    # without headers the front proxy's certificate names nobody the client CA vouches for
    assert _refused(authenticator, {"gunicorn.socket": sock}) == 401
    # a client-CA certificate asserting headers is not the front proxy: it is only itself,
    # as kube's union of authenticators finds it (the request-header one fails, x509 passes)
    impostor = Socket(issue(client_ca, FRONT_PROXY, client=True))
    environ = {"gunicorn.socket": impostor, "HTTP_X_REMOTE_USER": "admin"}
    assert authenticator.authenticate(environ).name == FRONT_PROXY


def test_the_tls_context_refuses_renegotiation(tmp_path: Path) -> None:
    """What a connection proved holds for its life only if its certificate cannot change:
    Go's server never renegotiates, and neither does ours."""
    pki = Pki.create(tmp_path)
    context = tls.server_context(str(tmp_path / "serving.crt"), str(tmp_path / "serving.key"))
    assert context.options & ssl.OP_NO_RENEGOTIATION
    assert pki.ca_file
