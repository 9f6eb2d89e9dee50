"""The kinds: one package per kind, one module per verb (the design card's "each verb of each
kind an independent stateless handler module").

- ``api/``: the bottom floor, the API's shared vocabulary (errors and Status, the handler
  contract, a kind's declaration and strategies, selectors, schema, metadata, columns, patches).
- ``owned/``: the verbs of kinds stored here, written once and configured by strategies.
- ``clustertasks/``, ``customtasks/``: kinds stored here; each ``__init__`` declares ``KIND``,
  each verb module is one line binding a verb of ``owned/``, ``status/`` is the subresource.
- ``combinedtasks/``: a kind read from the cluster, with verbs of its own.
- ``tasks.py``: the tutorial Task's shape, shared by the three kinds.
- ``registry.py``: the kinds found here, with their verb handlers.

Imports: the vocabulary, ``store`` and ``k8s``; never ``proxy``. Only ``proxy`` (through
``registry`` and ``api``) and the tests import this package.
"""
