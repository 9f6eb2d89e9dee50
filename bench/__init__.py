"""``make bench``: throughput and latency of the real server, and the ceiling of its stack.

Everything runs over HTTPS with client certificates on 127.0.0.1, started exactly as the
Procfile deploys it, so the figures include TLS, gunicorn and the WSGI layers a client pays.

Imports: the server's packages, ``devtools`` (the launcher, certificates) and, from the tests,
only what stands in for the world around the server: the fake cluster (``tests.fakes``) and
the throwaway PostgreSQL (``tests.support.postgres``).
"""
