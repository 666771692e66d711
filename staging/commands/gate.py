"""`staging gate [-- CMD...]`: refuse a deploy unless exactly this code passed staging.

Exit 0 when open (or CMD's own exit code when a command follows), 1 when closed, 2 on a
usage or config error, 127 when CMD is not found. The decision goes to stderr so the
deploy command's stdout stays its own. Signatures are required whenever
`STAGING_GATE_KEY` is set (`--allow-unsigned` is the escape; `--require-signature`
also closes the gate when the key is missing). When the tree was run in shards
(`staging run --shard K/N`, their records merged into `.staging/verdicts/`), the gate
opens only when the shards together cover every pipeline, all green (`staging.gate.union`).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from staging.gate import VerdictStore, decide, gate_key
from staging.gate.signing import KEY_ENV
from staging.gate.store import gate_target
from staging.state import ensure_state_dir

CLOSED = 1
NOT_FOUND = 127
NOT_EXECUTABLE = 126


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "gate",
        help="exit 0 only if staging passed for exactly this code; optionally run a deploy",
        description="Exit 0 only when a passing verdict exists for the current tree hash of "
        "the app (or, after `staging run --shard K/N`, passing shard verdicts that together "
        "cover every pipeline); with `-- CMD...`, run CMD only then and pass its exit code "
        "through, e.g. `staging gate -- flyctl deploy`.",
    )
    p.add_argument("--project", type=Path, default=Path("."), help="dir with pyproject.toml")
    signatures = p.add_mutually_exclusive_group()
    signatures.add_argument(
        "--require-signature",
        action="store_true",
        help=f"reject verdicts not signed with {KEY_ENV} (the default whenever {KEY_ENV} "
        "is set; with this flag, an unset key closes the gate too)",
    )
    signatures.add_argument(
        "--allow-unsigned",
        action="store_true",
        help=f"accept an unsigned verdict even though {KEY_ENV} is set (a signature that "
        "does not verify still closes the gate)",
    )
    # Not "command": the top-level parser keeps the subcommand's name under that dest.
    p.add_argument(
        "deploy_command",
        nargs=argparse.REMAINDER,
        metavar="-- CMD ...",
        help="the deploy command to run when the gate is open",
    )


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    command = list(args.deploy_command)
    if command and command[0] == "--":
        command = command[1:]
    from staging.workspace import changed_files, tree_hash

    app_dir, settings_path = gate_target(args.project)
    # The tree hash must not see the store itself, even when it arrived without its
    # `.gitignore` (a CI artifact downloaded into a fresh checkout).
    ensure_state_dir(app_dir)
    tree = tree_hash(app_dir, settings_path)
    decision = decide(
        VerdictStore(app_dir),
        tree,
        key=gate_key(),
        require_signature=_signature_policy(args),
        changed_files=lambda old, new: changed_files(app_dir, old, new),
    )
    _say(decision.render())
    if tree.excluded_tracked:
        _say(
            "  note: tracked but not part of this tree (the delivered settings path, which "
            f"staging writes itself): {', '.join(tree.excluded_tracked)}"
        )
    if not decision.open:
        return CLOSED
    if not command:
        return 0
    return run_command(command)


def _signature_policy(args: argparse.Namespace) -> bool | None:
    """True/False when a flag says so; None = required exactly when the key is set."""
    if args.require_signature:
        return True
    if getattr(args, "allow_unsigned", False):
        return False
    return None


def run_command(command: list[str]) -> int:
    """Run the deploy command in the foreground; its exit code is the gate's."""
    try:
        proc = subprocess.Popen(command)
    except FileNotFoundError:
        _say(
            f"staging gate: the gate is open but the command was not found: {command[0]!r}\n"
            "Hint: install it or fix PATH; nothing was deployed"
        )
        return NOT_FOUND
    except PermissionError:
        _say(
            f"staging gate: the gate is open but {command[0]!r} is not executable\n"
            "Hint: chmod +x it, or call it through its interpreter; nothing was deployed"
        )
        return NOT_EXECUTABLE
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        # Ctrl-C reached the deploy command too (same process group): let it shut down
        # cleanly and report its own exit code rather than abandon it mid-deploy.
        code = proc.wait()
    return 128 - code if code < 0 else code
