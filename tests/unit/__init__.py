"""Unit tests: each piece alone, in seconds; no server process, no cluster but `responses`."""
