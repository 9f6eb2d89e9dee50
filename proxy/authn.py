"""Authentication, in the order of kube's delegated servers (A3-A6).

1. Front-proxy: ``X-Remote-*`` headers count only when the TLS peer certificate was issued by
   the request-header CA, carries clientAuth, is valid now and (if a list is configured) has
   an allowed CN. Python's ``ssl`` does not say which CA verified a chain, so that is checked
   here on the certificate itself.
2. x509: a certificate issued by the client CA; user = CN, groups = O.
3. Bearer token: a TokenReview, cached for a few seconds.
4. Otherwise ``system:anonymous``. An authenticator's error with no success is a 401: there
   is no fallback to anonymous.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Callable, Mapping, Sequence
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


def peer_certificate(environ: Mapping[str, Any]) -> x509.Certificate | None:
    """The client certificate the handshake verified, if the client sent one."""
    sock = environ.get("gunicorn.socket") or environ.get("gunicorn.sock")
    getpeercert = getattr(sock, "getpeercert", None)
    der = getpeercert(binary_form=True) if getpeercert else None
    return _load(der) if der else None


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
        cert = peer_certificate(environ)
        if cert is not None and config is not None:
            header = config.request_header
            if header is not None:
                asserted = front_proxy_user(environ, header)
                if asserted is not None:
                    if issued_by(cert, header.cas) and self._allowed(cert, header):
                        return asserted
                    failed = True
            if issued_by(cert, config.client_cas):
                user = x509_user(cert)
                if user is not None:
                    return user
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
