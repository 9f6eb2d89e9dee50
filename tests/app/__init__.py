"""The Falcon app in process: every request path short of gunicorn and TLS."""
