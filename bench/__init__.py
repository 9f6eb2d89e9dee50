"""``make bench``: throughput and latency of the real server, and the ceiling of its stack.

Everything runs over HTTPS with client certificates on 127.0.0.1, started exactly as the
Procfile deploys it, so the figures include TLS, gunicorn and the WSGI layers a client pays.
"""
