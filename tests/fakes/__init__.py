"""The fake cluster: a stand-in kube-apiserver, served over HTTPS on loopback with its own CA.

It serves Tasks and Events (``objects``), the TokenReviews and SubjectAccessReviews
(``cluster``) and the authentication ConfigMap, in kube's shapes and wording, with its own
selectors (``selectors``), patches (``patches``) and Status errors (``errors``). The tests
import it, and so do the benchmarks that need a cluster (``bench/``).

It borrows no production code: nothing from ``handlers``, ``proxy``, ``store`` or ``k8s``. The
fake is what that code is checked against, so sharing it would mirror its bugs and hide them.
The one exception is certificate generation from ``devtools.certs``, which is dev tooling, not
behaviour under test: a broken certificate fails every TLS handshake loudly, it cannot make a
wrong answer look right.
"""
