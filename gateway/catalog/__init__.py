"""Backends, models and their immutable versions: declared in YAML, kept in SQL, served from memory."""
