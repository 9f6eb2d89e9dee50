"""The front door: all that is the same for every kind.

TLS settings for gunicorn (:mod:`.tls`, ``gunicorn.conf.py``), RequestInfo, authentication and
authorization (:mod:`.middleware`, :mod:`.authn`, :mod:`.authz`, :mod:`.security`), content
negotiation, discovery and OpenAPI documents, dispatch to the verb handlers, rendering and
watch streaming (:mod:`.dispatch`, :mod:`.render`, :mod:`.streaming`, :mod:`.fanout`), and a
Status for every error. :mod:`.app` is the table of contents.

Imports: ``handlers.api`` (the vocabulary) and ``handlers.registry`` (the kinds served, never
a kind's package), ``store`` and ``k8s``. Nothing imports the proxy but gunicorn, the tests
and the benchmarks.
"""
