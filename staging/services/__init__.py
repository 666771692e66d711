"""Throwaway Postgres and Temporal for one run, from Docker or from wheels.

Entry point: `staging.services.environment.Environment.start(spec, backend=...)`.
"""
