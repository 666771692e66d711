"""Rehearsing the deploy (issue 15): worker replicas, the rollout from the last green tree,
and activities interrupted by a killed worker.

- `tree`: the last green tree, materialised from git objects into a second workspace
- `history`: reading a workflow's history: swap point, reset point, non-determinism
- `processes`: the old tree's processes; freeze and the platform's SIGTERM/grace/SIGKILL
- `rehearsal`: the rollout's steps (the phase is `staging.phases.rollout`)
- `pollers`, `replicas`: N worker processes, each found polling by its identity
- `kill`, `chaos`: the `interrupt` phase (`interrupt = true`, `staging run --chaos`)
"""
