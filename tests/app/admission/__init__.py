"""The admission chain in process, against the fake cluster."""
