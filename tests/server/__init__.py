"""The real server under gunicorn over TLS, started as the Procfile deploys it."""
