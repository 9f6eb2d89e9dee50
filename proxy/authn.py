"""Authentication, in the order of kube's delegated servers (A3-A6).

1. Front-proxy: ``X-Remote-*`` headers count only when the TLS peer certificate was issued by
   the request-header CA, carries clientAuth, is valid now and (if a list is configured) has
   an allowed CN. Python's ``ssl`` does not say which CA verified a chain, so that is checked
   here on the certificate itself.
2. x509: a certificate issued by the client CA; user = CN, groups = O.
3. Bearer token: a TokenReview, cached for a few seconds.
4. Otherwise ``system:anonymous``. An authenticator's error with no success is a 401: there
   is no fallback to anonymous.

What a connection's certificate proves (whom it names, whether it is the front proxy's) is
found once per connection and trust configuration, and kept on the TLS socket: a keep-alive
connection from the aggregator carries thousands of requests, and the checks cost a sixth of
a get's instructions. The certificate cannot change under it (the TLS context refuses renegotiation,
:mod:`proxy.tls`); its validity period is still checked on every request, and new trusts (a
rotated CA) are a new configuration, so the proof is found again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from handlers.api.errors import unauthorized
from handlers.api.users import User
from proxy.authconfig import AuthConfig, RequestHeader

ANONYMOUS = User("system:anonymous", ("system:unauthenticated",))
AUTHENTICATED = "system:authenticated"

TokenReviewer = Callable[[str], Mapping[str, Any]]
"""Token -> a TokenReview's status; raises on a failed review."""


_PROOF = "task_search_proof"  # the attribute of a TLS socket holding its certificate's Proof


def peer_certificate(environ: Mapping[str, Any]) -> x509.Certificate | None:
    """The client certificate the handshake verified, if the client sent one."""
    getpeercert = getattr(_socket(environ), "getpeercert", None)
    der = getpeercert(binary_form=True) if getpeercert else None
    return _load(der) if der else None


def _socket(environ: Mapping[str, Any]) -> Any:
    return environ.get("gunicorn.socket") or environ.get("gunicorn.sock")


@dataclass(frozen=True, slots=True)
class Proof:
    """What a connection's client certificate proves under one trust configuration, while
    it is valid: whether it is the front proxy's, and the x509 user it names (None if the
    client CA did not issue it)."""

    config: AuthConfig
    front_proxy: bool
    user: User | None
    not_before: float  # seconds since the epoch
    not_after: float

    def valid(self, now: float) -> bool:
        return self.not_before <= now <= self.not_after


@functools.lru_cache(maxsize=1024)
def _load(der: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(der)


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in name.get_attributes_for_oid(oid)]


def issued_by(cert: x509.Certificate, cas: tuple[x509.Certificate, ...]) -> bool:
    """Whether one of ``cas`` signed ``cert``, which must be valid now and usable for client
    authentication."""
    now = dt.datetime.now(dt.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return False
    return _vouched(cert, cas)


def _vouched(cert: x509.Certificate, cas: tuple[x509.Certificate, ...]) -> bool:
    """:func:`issued_by` but for the validity period."""
    return _client_auth(cert) and _signed_by(cert, cas)


@functools.lru_cache(maxsize=1024)
def _client_auth(cert: x509.Certificate) -> bool:
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True  # no restriction, as Go's verifier reads it
    return ExtendedKeyUsageOID.CLIENT_AUTH in usages


@functools.lru_cache(maxsize=1024)
def _signed_by(cert: x509.Certificate, cas: tuple[x509.Certificate, ...]) -> bool:
    """The signature check, remembered: it costs ~100 µs and a connection sends many requests."""
    for ca in cas:
        if ca.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False


def _header(environ: Mapping[str, Any], name: str) -> str:
    return str(environ.get("HTTP_" + name.upper().replace("-", "_"), ""))


def _values(raw: str) -> list[str]:
    """Repeated headers arrive joined with commas."""
    return [v.strip() for v in raw.split(",") if v.strip()]


def front_proxy_user(environ: Mapping[str, Any], config: RequestHeader) -> User | None:
    """The user the front proxy asserts in headers, if it asserts one."""
    name = next((v for h in config.username_headers if (v := _header(environ, h))), "")
    if not name:
        return None
    groups = [g for h in config.group_headers for g in _values(_header(environ, h))]
    uid = next((v for h in config.uid_headers if (v := _header(environ, h))), "")
    extra: dict[str, tuple[str, ...]] = {}
    for prefix in config.extra_prefixes:
        marker = "HTTP_" + prefix.upper().replace("-", "_")
        for key, value in environ.items():
            if key.startswith(marker) and len(key) > len(marker):
                extra_key = unquote(key[len(marker) :].lower().replace("_", "-"))
                extra[extra_key] = (*extra.get(extra_key, ()), *_values(str(value)))
    return _authenticated(name, groups, uid, extra)


def _authenticated(
    name: str,
    groups: Sequence[str],
    uid: str = "",
    extra: Mapping[str, Sequence[str]] | None = None,
) -> User:
    """Every authenticated user is in ``system:authenticated``."""
    all_groups = tuple(groups) if AUTHENTICATED in groups else (*groups, AUTHENTICATED)
    return User(name, all_groups, uid, {k: tuple(v) for k, v in (extra or {}).items()})


@functools.lru_cache(maxsize=1024)
def x509_user(cert: x509.Certificate) -> User | None:
    """User = subject CN, groups = subject O values, as kube's x509 authenticator."""
    names = _attribute(cert.subject, NameOID.COMMON_NAME)
    if not names:
        return None
    fingerprint = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()
    return _authenticated(
        names[0],
        _attribute(cert.subject, NameOID.ORGANIZATION_NAME),
        extra={"authentication.kubernetes.io/credential-id": [f"X509SHA256={fingerprint}"]},
    )


def token_user(status: Mapping[str, Any]) -> User | None:
    """The identity a TokenReview status vouches for."""
    if not status.get("authenticated"):
        return None
    user = status.get("user") or {}
    extra = {k: list(v) for k, v in (user.get("extra") or {}).items()}
    return _authenticated(
        user.get("username", ""), user.get("groups") or [], user.get("uid", ""), extra
    )


class Authenticator:
    """Turns a request's certificate, headers and token into a :class:`User`."""

    def __init__(
        self, config: Callable[[], AuthConfig | None], tokens: TokenReviewer | None
    ) -> None:
        self._config = config
        self._tokens = tokens

    def authenticate(self, environ: Mapping[str, Any]) -> User:
        """The requester, or a 401 ApiError when a credential was presented and failed."""
        config = self._config()
        failed = False
        proof = self._proof(environ, config) if config is not None else None
        if proof is not None and config is not None:
            if proof.valid(time.time()):
                header = config.request_header
                if header is not None:
                    asserted = front_proxy_user(environ, header)
                    if asserted is not None:
                        if proof.front_proxy:
                            return asserted
                        failed = True
                if proof.user is not None:
                    return proof.user
            failed = True
        token = _bearer(environ)
        if token and self._tokens is not None:
            try:
                user = token_user(self._tokens(token))
            except Exception:
                user = None
            if user is not None:
                return user
            failed = True
        if failed:
            raise unauthorized()
        return ANONYMOUS

    def _proof(self, environ: Mapping[str, Any], config: AuthConfig) -> Proof | None:
        """The proof of this connection's certificate under ``config`` (None without a
        certificate), found on its first request and kept on the socket."""
        sock = _socket(environ)
        proof: Proof | None = getattr(sock, _PROOF, None)
        if proof is not None and proof.config is config:
            return proof
        cert = peer_certificate(environ)
        if cert is None:
            return None
        header = config.request_header
        proof = Proof(
            config,
            header is not None and _vouched(cert, header.cas) and self._allowed(cert, header),
            x509_user(cert) if _vouched(cert, config.client_cas) else None,
            cert.not_valid_before_utc.timestamp(),
            cert.not_valid_after_utc.timestamp(),
        )
        with contextlib.suppress(AttributeError):  # if it cannot hold it: found again next time
            setattr(sock, _PROOF, proof)
        return proof

    @staticmethod
    def _allowed(cert: x509.Certificate, header: RequestHeader) -> bool:
        if not header.allowed_names:
            return True
        return any(
            cn in header.allowed_names for cn in _attribute(cert.subject, NameOID.COMMON_NAME)
        )


def _bearer(environ: Mapping[str, Any]) -> str:
    scheme, _, token = str(environ.get("HTTP_AUTHORIZATION", "")).partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""
