"""API keys: issuing, hashing, revoking, and the cached lookup on the request path."""
