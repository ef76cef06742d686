"""Quotas and budgets: declarative limits on organizations, teams, keys, end users and models,
reserved before a request is forwarded and settled with what it really used."""
