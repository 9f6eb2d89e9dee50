"""Tools for developers, never deployed: ``make run``'s dev environment (:mod:`devtools.devenv`),
``make certs`` (:mod:`devtools.clustercerts`), certificates for both and for the tests
(:mod:`devtools.certs`), the Procfile runner (:mod:`devtools.procfile`), and the launcher that
runs the server as deployed for the tests and the benchmarks (:mod:`devtools.launch`).

Imports: the server's settings at most; nothing of the server imports this package (the image
does not even copy it). Tests and benchmarks import it.
"""
