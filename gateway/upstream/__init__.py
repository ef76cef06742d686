"""The one upstream HTTP connection pool and its transport."""
