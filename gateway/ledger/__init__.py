"""The usage ledger: one record per request, priced from its model version, written in batches."""
