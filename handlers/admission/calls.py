"""Calling an admission webhook as kube-apiserver calls one: an AdmissionReview
(``admission.k8s.io/v1``) POSTed to its ``clientConfig`` with ``?timeout=``, TLS verified
against its ``caBundle``, one pooled connection per webhook, and the answer checked before it
is believed. Failures are worded as k8s.io/apiserver words them (``failed calling webhook
"name": ...``), with Go's words for the transport's errors where they differ from Python's."""

from __future__ import annotations

import base64
import binascii
import hashlib
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter

REVIEW_GROUP = "admission.k8s.io"
VERSIONS = ("v1", "v1beta1")
"""The AdmissionReview versions kube sends, in its order of preference."""
DEFAULT_TIMEOUT_SECONDS = 10
MAX_TIMEOUT_SECONDS = 30
POOL = 4
"""Connections kept per webhook."""


class CallFailed(Exception):
    """kube's ErrCallingWebhook: the webhook gave no usable answer; its failurePolicy
    decides."""

    def __init__(self, webhook: str, reason: str) -> None:
        super().__init__(f'failed calling webhook "{webhook}": {reason}')


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a webhook is, read from its ``clientConfig``."""

    url: str
    ca_bundle: bytes

    @classmethod
    def of(cls, client_config: Mapping[str, Any]) -> Endpoint:
        """``url``, or ``service`` (port 443 unless given) as its cluster DNS name."""
        given = str(client_config.get("caBundle") or "")
        try:
            bundle = base64.b64decode(given, validate=True)
        except binascii.Error:  # kube refuses such a configuration; calls with it fail TLS
            bundle = given.encode()
        if client_config.get("url"):
            return cls(str(client_config["url"]), bundle)
        service = client_config.get("service") or {}
        port = service.get("port") or 443
        path = service.get("path") or ""
        host = f"{service.get('name', '')}.{service.get('namespace', '')}.svc"
        return cls(f"https://{host}:{port}{path}", bundle)


class Caller:
    """One HTTP session per webhook endpoint (kept while its configuration is), and the CA
    files their TLS verification reads."""

    def __init__(self) -> None:
        self._sessions: dict[tuple[str, bytes], requests.Session] = {}
        self._lock = threading.Lock()
        self._ca_dir = Path(tempfile.mkdtemp(prefix="webhook-ca-"))

    def review(
        self,
        name: str,
        endpoint: Endpoint,
        request: dict[str, Any],
        timeout_seconds: int | None,
        version: str = "v1",
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """The webhook's AdmissionReview ``response`` to ``request`` (uid checked), waited
        for no longer than its timeout, nor past the request's ``deadline``."""
        api_version = f"{REVIEW_GROUP}/{version}"
        seconds = min(timeout_seconds or DEFAULT_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS)
        separator = "&" if urlsplit(endpoint.url).query else "?"
        url = f"{endpoint.url}{separator}timeout={seconds}s"
        wait: float = seconds
        if deadline is not None:
            wait = min(wait, deadline - time.monotonic())
            if wait <= 0:
                raise CallFailed(name, f'Post "{url}": context deadline exceeded')
        body = orjson.dumps(
            {"apiVersion": api_version, "kind": "AdmissionReview", "request": request}
        )
        try:
            answer = self._session(endpoint).post(
                url,
                data=body,
                headers={"Content-Type": "application/json", "Accept": "application/json"},
                timeout=wait,
            )
        except requests.RequestException as error:
            raise CallFailed(name, f'Post "{url}": {_go_words(error)}') from None
        if answer.status_code != 200:
            raise CallFailed(
                name, f"the server responded with the status code {answer.status_code}"
            )
        return _response(name, answer.content, request["uid"], api_version)

    def _session(self, endpoint: Endpoint) -> requests.Session:
        key = (endpoint.url, endpoint.ca_bundle)
        session = self._sessions.get(key)
        if session is None:
            with self._lock:
                session = self._sessions.get(key)
                if session is None:
                    session = requests.Session()
                    adapter = HTTPAdapter(pool_maxsize=POOL)
                    session.mount("https://", adapter)
                    session.mount("http://", adapter)
                    session.verify = (
                        self._ca_file(endpoint.ca_bundle) if endpoint.ca_bundle else True
                    )
                    session.trust_env = False  # no proxy stands between kube and a webhook
                    self._sessions[key] = session
        return session

    def _ca_file(self, bundle: bytes) -> str:
        path = self._ca_dir / f"{hashlib.sha256(bundle).hexdigest()}.crt"
        if not path.exists():
            path.write_bytes(bundle)
        return str(path)


def _go_words(error: requests.RequestException) -> str:
    """The transport's error as Go's http client would word it, for the cases kube users
    know by heart."""
    text = str(error)
    if isinstance(error, requests.Timeout):
        return "context deadline exceeded"
    if isinstance(error, requests.exceptions.SSLError):
        if "CERTIFICATE_VERIFY_FAILED" in text:
            return (
                "tls: failed to verify certificate: x509: certificate signed by unknown authority"
            )
        return f"tls: {text}"
    if isinstance(error, requests.ConnectionError) and "Connection refused" in text:
        sent = error.request.url if error.request is not None else None
        url = urlsplit(str(sent or ""))
        return f"dial tcp {url.hostname}:{url.port or 443}: connect: connection refused"
    return text


def _response(name: str, content: bytes, uid: str, api_version: str) -> dict[str, Any]:
    """The ``response`` of an AdmissionReview, as kube's VerifyAdmissionResponse checks it."""
    try:
        review = orjson.loads(content)
    except orjson.JSONDecodeError as error:
        raise CallFailed(name, f"received invalid webhook response: {error}") from None
    if not isinstance(review, dict) or not isinstance(review.get("response"), dict):
        raise CallFailed(name, "received invalid webhook response: response is missing")
    if review.get("apiVersion") != api_version or review.get("kind") != "AdmissionReview":
        raise CallFailed(
            name,
            "received invalid webhook response: expected webhook response of "
            f"{api_version}, Kind=AdmissionReview, got "
            f"{review.get('apiVersion', '')}, Kind={review.get('kind', '')}",
        )
    response: dict[str, Any] = review["response"]
    if response.get("uid") != uid:
        raise CallFailed(
            name,
            f'received invalid webhook response: expected response.uid="{uid}", '
            f'got "{response.get("uid", "")}"',
        )
    return response


def version_for(offered: list[str]) -> str | None:
    """The AdmissionReview version to send a webhook offering ``offered`` (v1 first)."""
    return next((v for v in VERSIONS if v in offered), None)


def new_uid() -> str:
    """An admission request's uid: one per call, as kube makes one."""
    return str(uuid.uuid4())
