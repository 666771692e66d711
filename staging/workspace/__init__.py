"""The workspace phase: the app as it would be deployed, its settings, its environment.

- `files`: which files are deployable (one rule for the copy and the tree hash)
- `copy`: `Workspace.create(app_dir)`, an isolated temp copy
- `tree`: `tree_hash` (what a verdict is keyed by), `changed_files`, `diff_text`
- `delivery`: writes the rendered settings the way production delivers them, one strategy
  per mode (dotenv, environ, secrets_dir)
- `hermetic`: the minimal environment of the app's processes
"""

from __future__ import annotations

from staging.workspace.copy import Workspace
from staging.workspace.delivery import (
    Delivery,
    DeliveryMode,
    DeliveryStrategy,
    deliver,
    encode_dotenv_value,
    strategy_for,
)
from staging.workspace.files import deployable_files, is_env_file, is_excluded
from staging.workspace.git import GitError
from staging.workspace.hermetic import hermetic_env, resolve_command
from staging.workspace.tree import TreeInfo, changed_files, diff_text, tree_hash

__all__ = [
    "Delivery",
    "DeliveryMode",
    "DeliveryStrategy",
    "GitError",
    "TreeInfo",
    "Workspace",
    "changed_files",
    "deliver",
    "deployable_files",
    "diff_text",
    "encode_dotenv_value",
    "hermetic_env",
    "is_env_file",
    "is_excluded",
    "resolve_command",
    "strategy_for",
    "tree_hash",
]
