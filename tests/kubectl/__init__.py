"""Every kubectl 1.27-1.33 against the real server (and the fake cluster for combinedtasks)."""
