"""Admission: the chain of plugins every write of an owned kind passes, as k8s.io/apiserver's."""
