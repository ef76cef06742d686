"""The SQL control plane: tables, engine and migrations."""
