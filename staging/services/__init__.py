"""Throwaway services for one run (Postgres, Temporal, generic ones), from Docker or wheels.

Entry point: `staging.services.environment.Environment.start(spec, backend=...)`.
Registries: `staging.services.kinds` (what a run can ask for: postgres, temporal, generic)
and `staging.services.backends` (what runs it: docker, process, attach).
"""
