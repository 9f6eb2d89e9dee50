"""Tools for developers, never deployed: ``make run``'s dev environment (:mod:`devtools.devenv`),
``make certs`` (:mod:`devtools.clustercerts`), certificates for both and for the tests
(:mod:`devtools.certs`), and the Procfile runner (:mod:`devtools.procfile`).

Imports: the server's settings at most; nothing of the server imports this package (the image
does not even copy it). Tests and benchmarks import it.
"""
