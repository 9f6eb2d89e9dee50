"""The status subresource of CustomTask: PUT and PATCH change only .status."""
