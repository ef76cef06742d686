"""Organizations, teams, users and their admin tokens."""
