"""Authentication and authorization, wired to the cluster's reviews, or in dev (no cluster)
to the settings' files with only ``system:masters`` allowed."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

from k8s.client import Cluster
from k8s.reviews import authentication_configmap, subject_access_review, token_review
from proxy import authz
from proxy.authconfig import AuthConfig, AuthConfigSource, from_configmap, from_settings
from proxy.authn import Authenticator, TokenReviewer
from proxy.reviewcache import ReviewCache
from proxy.settings import Settings


class Security:
    """The authenticator, the authorizer, and the source of the trusts they use (kept fresh
    by a thread until ``stop`` is set; ``source.check`` is a readiness check)."""

    def __init__(
        self,
        settings: Settings,
        reviews: Cluster | None,
        authorizer: authz.Authorizer | None,
        stop: threading.Event,
    ) -> None:
        load: Callable[[], AuthConfig]
        tokens: TokenReviewer | None = None
        if reviews is None:
            load = functools.partial(from_settings, settings)
            self.authorizer = authorizer or authz.MastersOnly()
        else:
            cluster = reviews

            def load() -> AuthConfig:
                return from_configmap(authentication_configmap(cluster))

            tokens = ReviewCache(
                lambda token: token_review(cluster, token),
                review="TokenReview",
                ttl=settings.auth_cache_seconds,
            ).get
            self.authorizer = authorizer or authz.SubjectAccessReviews(
                lambda spec: subject_access_review(cluster, spec), ttl=settings.auth_cache_seconds
            )
        self.source = AuthConfigSource(load, settings.auth_refresh_seconds, stop)
        self.source.refresh()
        self.source.start()
        self.authenticator = Authenticator(lambda: self.source.current, tokens)
