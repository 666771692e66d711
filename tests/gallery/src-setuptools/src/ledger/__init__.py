"""Ledger: one workflow posting entries to Postgres."""
