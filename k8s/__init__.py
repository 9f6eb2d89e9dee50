"""The cluster: API client, event cache, Task controller and deployment manifests."""

SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
"""Where the kubelet mounts a pod's service-account token and the cluster's CA. Here, not in
k8s.client: the settings read it in gunicorn's master, which must not import requests before
a gevent worker has patched ssl."""
