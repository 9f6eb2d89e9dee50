"""Kinds the tests declare, to prove that a new stored kind is one package: an ``__init__``
that declares it, one-line verb modules, and its rules in its strategy."""
