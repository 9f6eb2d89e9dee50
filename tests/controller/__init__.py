"""The Task controller against the fake cluster, in process and as the Procfile runs it."""
