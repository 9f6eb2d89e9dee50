"""The verbs of kinds this server stores, written once for all of them (as k8s.io/apiserver's
generic registry store): one module per verb, each with its ``handle``, and the steps they
share. What differs between kinds, or for a subresource, comes from the kind's declared
strategies (:mod:`handlers.api.strategy`), never from a branch here.

A stored kind's verb modules are one line each, binding these: ``from handlers.owned.get
import handle as handle``.

Imports: the vocabulary (``handlers.api``) and ``store``; never a kind package, never ``proxy``.
"""
