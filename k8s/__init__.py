"""The cluster: the API client (:mod:`.client`), the review calls the front door makes
(:mod:`.reviews`), where the Task API and Events live (:mod:`.paths`), the Events cache and the
upstream handed to handlers (:mod:`.events`, :mod:`.upstream`), the Task controller
(:mod:`.controller`, the Procfile's second process) and the deployment manifests
(``manifests/``, kustomize).

Imports: libraries only; never ``proxy`` or ``handlers``, which both import it.
"""

SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
"""Where the kubelet mounts a pod's service-account token and the cluster's CA. Here, not in
k8s.client: the settings read it in gunicorn's master, which must not import requests before
a gevent worker has patched ssl."""
