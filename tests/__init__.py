"""The tests, in folders by level, so that the fast ones run alone (``pytest tests/unit``):

- ``unit/``: functions and classes alone (selectors, negotiation, authn, the cluster client
  and Events cache through ``responses``, the fan-out on real sockets, the layering rules);
- ``app/``: the Falcon app in process (``falcon.testing``), on a fresh SQLite store;
- ``store/``: both stores against one contract, on SQLite and a throwaway PostgreSQL;
- ``server/``: the real server under gunicorn over TLS (auth, watches, two processes, PostgreSQL);
- ``kubectl/``: every kubectl 1.27-1.33 against the real server (and the fake cluster);
- ``controller/``: the Task controller against the fake cluster, and as the Procfile runs it;
- ``deployment/``: the manifests, the image, and the server run as the Deployment runs it;
- ``fakes/``: the fake cluster and its own tests; ``support/``: launchers and runners.
"""
