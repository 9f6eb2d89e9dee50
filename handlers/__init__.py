"""One package per kind, one module per verb; shared API machinery in the modules beside them."""
