"""The status subresource of ClusterTask: PUT and PATCH change only .status."""
