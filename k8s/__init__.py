"""The cluster: API client, event cache, Task controller and deployment manifests."""
