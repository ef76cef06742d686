"""The admin HTTP API, protected by the admin key from settings."""
