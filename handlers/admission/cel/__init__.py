"""CEL expressions compiled and evaluated as kube-apiserver's ValidatingAdmissionPolicy does,
on Google's C++ CEL (``cel-expr-python``).

The environment is kube's VAP one as far as that library lets it be: the variables ``object``,
``oldObject``, ``request``, ``params``, ``namespaceObject``, ``authorizer`` (with
``authorizer.requestResource``) and ``variables``, all ``dyn``; optional types; cel-go's strings
extension (kube's version 2, with ``format`` done by the library's own, plus ``reverse``), sets
extension and lists extension (``distinct``, ``flatten``, ``lists.range``, ``reverse``,
``slice``, ``sort``); the math extension; kube's lists, regex, URL, quantity, IP, CIDR and
authorizer libraries (its field and label selectors are accepted, not forwarded). Messages are
kube's and cel-go's where the library words them otherwise.

kube's types: the library holds no Python objects and declares no new types, so a Quantity,
URL, IP, CIDR or authorizer value is a map with one private key (``@kubernetes...``); results
turn them back into Python objects.

Composited variables are lazy, as in kube: evaluated in the Context on first use, and an error
reaches only the expressions that read the variable.

Not supported, as the library forbids it (new overloads of ``string`` or of the comparison
operators, Python functions returning timestamps, durations or optionals): ``string(ip)``,
``string(cidr)``, kube's ``format.*`` library, ``first()``/``last()``, ``sortBy``,
``min``/``max``/``sum`` over timestamps or durations, literal cross-type comparisons
(``1 < 1.5``; ``object.x < 1.5`` works), two-variable comprehensions; nor semver, cost limits,
or compile-time checks of regex literals. ``request`` and ``namespaceObject`` are ``dyn``, so
their misspelt fields fail when evaluated, not when compiled.

Measured medians (one core): compiling 65-110 µs (then cached); evaluating
``object.spec.priority <= 5`` 3-4 µs in a Context already used, 18 µs with a new Context
(building it and converting the object included); ``quantity(x).isLessThan(quantity(y))``
13 µs; reading an evaluated variable 10 µs; an authorizer chain 35 µs (decision cached).

The modules:

- ``expressions``: the public API (``compile``, ``Expression``, ``Context``, the errors).
- ``environment``: the declarations of the functions and the one environment.
- ``variables``: the rewriting of ``variables.name`` reads and the functions they call.
- ``values``: library values, CEL's equality and ordering, conversions to and from the library.
- ``contexts``: the Contexts alive, by the key library values carry.
- ``messages``: the library's errors in cel-go's and kube's words.
- ``strings``, ``lists``, ``regex``, ``urls``, ``addresses`` (IP and CIDR), ``quantities``,
  ``authorizer``: the libraries; ``quantity``: the parser of Kubernetes quantities.
"""
