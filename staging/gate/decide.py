"""The gate decision: open only when the newest verdict for exactly this code passed.

Checked in order, first match closes: a signature required but no key to check it; no
verdict for this tree; a signature that does not verify (always fatal, required or not);
an unsigned verdict while signatures are required (by default whenever
`STAGING_GATE_KEY` is set: a key that exists but is not asked for would let a verdict
written by hand through); a verdict whose own tree hash is not this tree (copied by
hand); a verdict that did not pass; a pass that did not cover every configured
pipeline, replay and checks (`--pipeline NAME`), or does not say what it covered.
When the tree has shard verdicts (`staging run --shard K/N`), they and the full verdict
are decided together by `staging.gate.union`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from staging.gate.coverage import Coverage
from staging.gate.decision import STOP, GateDecision, GateState, Tree, describe_tree
from staging.gate.signing import KEY_ENV, SignatureState, verify
from staging.gate.store import StoreError, VerdictStore
from staging.gate.union import decide_union

_MAX_FILES = 30

# (old tree, new tree) -> ["M path", "A path", "D path"]
ChangedFiles = Callable[[str, str], list[str]]


def decide(
    store: VerdictStore,
    tree: Tree,
    *,
    key: bytes | None,
    require_signature: bool | None = None,
    changed_files: ChangedFiles | None = None,
) -> GateDecision:
    """`require_signature`: True/False forces it; None (the default) = required iff a key is set."""
    code = describe_tree(tree)
    implied = require_signature is None
    if implied:
        require_signature = key is not None
    if require_signature and key is None:
        return GateDecision(
            GateState.NO_KEY,
            f"--require-signature is set but {KEY_ENV} is not, so no verdict can be checked",
            hint=f"set {KEY_ENV} to the same secret the staging run signed with "
            "(a repository secret in CI)",
        )
    try:
        verdict = store.load(tree.hash)
        shards = store.shard_records(tree.hash)
    except StoreError as exc:
        return GateDecision(GateState.UNREADABLE, exc.message, (exc.observed or "?",), exc.hint)
    if shards:
        full = [(store.verdict_path(tree.hash), verdict)] if verdict is not None else []
        return decide_union(
            full + shards, tree, key=key, require_signature=bool(require_signature), implied=implied
        )
    if verdict is None:
        return GateDecision(
            GateState.NO_VERDICT,
            f"no staging run for this code ({code})",
            tuple(_since_green(store, tree, changed_files)),
            hint="run `staging run` (or `nox -s staging`) on exactly this code, then deploy "
            "what it passed",
        )

    signature = verify(verdict, key)
    if signature is SignatureState.INVALID:
        return GateDecision(
            GateState.BAD_SIGNATURE,
            f"the verdict for this code does not match its signature ({code})",
            (f"verdict: {store.verdict_path(tree.hash)}",),
            hint=f"it was edited after signing, or signed with a different {KEY_ENV}; "
            "never edit verdicts — run staging again with the same key",
            verdict=verdict,
        )
    if require_signature and signature is not SignatureState.VALID:
        why = (
            f"{KEY_ENV} is set, so signatures are required"
            if implied
            else ("--require-signature is set")
        )
        escape = " (or pass --allow-unsigned to accept unsigned verdicts)" if implied else ""
        return GateDecision(
            GateState.UNSIGNED,
            f"the verdict for this code is not signed and {why} ({code})",
            (f"verdict: {store.verdict_path(tree.hash)}",),
            hint=f"set {KEY_ENV} in the job that runs staging so it signs its verdicts; "
            f"a verdict written by hand must not open the gate{escape}",
            verdict=verdict,
        )
    recorded = _dict(verdict.get("tree"))
    if recorded.get("hash") != tree.hash:
        return GateDecision(
            GateState.MISMATCH,
            f"the verdict stored for this code names another tree ({code})",
            (f"the verdict says tree {str(recorded.get('hash'))[:12]}",),
            hint="verdict files are keyed by their tree; do not copy or rename them",
            verdict=verdict,
        )
    run_id = str(verdict.get("run_id", "?"))
    if verdict.get("status") != "passed":
        diagnosis = _dict(verdict.get("diagnosis"))
        klass = diagnosis.get("class") or verdict.get("status", "failed")
        cause = diagnosis.get("cause") or "(no diagnosis recorded)"
        details = [f"run {run_id}: {klass}: {cause}"]
        details.extend(_since_green(store, tree, changed_files))
        details.append(STOP.format(run=run_id))
        return GateDecision(
            GateState.RUN_FAILED,
            f"the staging run for this code {verdict.get('status', 'failed')} ({code})",
            tuple(details),
            hint=str(diagnosis.get("hint") or ""),
            verdict=verdict,
        )
    partial = _partial(verdict, code, run_id)
    if partial is not None:
        return partial
    signed = " (signature verified)" if signature is SignatureState.VALID else ""
    return GateDecision(
        GateState.OPEN,
        f"staging passed for this code ({code}){signed}",
        (f"run {run_id}, finished {verdict.get('finished_at', '?')}",),
        verdict=verdict,
    )


def _partial(verdict: dict[str, Any], code: str, run_id: str) -> GateDecision | None:
    """Closed when the passing run did not cover everything configured, else None."""
    coverage = Coverage.from_verdict(verdict)
    if coverage is None:
        return GateDecision(
            GateState.PARTIAL,
            f"the verdict for this code does not record which pipelines ran ({code})",
            (f"run {run_id}, verdict schema {verdict.get('schema', '?')}",),
            hint="it was written by an older staging, which could not tell a partial run "
            "from a full one; run `staging run` again on exactly this code",
            verdict=verdict,
        )
    if coverage.complete:
        return None
    details = [f"run {run_id}: {coverage.summary()}"]
    if coverage.missing:
        details.append(f"pipelines not run: {', '.join(coverage.missing)}")
    if coverage.requested:
        details.append(f"the run was limited to: {', '.join(coverage.requested)} (--pipeline)")
    return GateDecision(
        GateState.PARTIAL,
        f"the staging run for this code was a partial run ({code})",
        tuple(details),
        hint="run `staging run` without --pipeline on exactly this code; "
        "a pass proves only the pipelines it ran",
        verdict=verdict,
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _since_green(store: VerdictStore, tree: Tree, changed_files: ChangedFiles | None) -> list[str]:
    """What changed between the last green tree and this one, for the message."""
    try:
        green = store.last_green()
    except StoreError:
        green = None
    if not green or not green.get("tree"):
        return ["no run of this project has passed yet"]
    old = str(green["tree"])
    if old == tree.hash:
        return []
    commit = f", commit {str(green['commit'])[:10]}" if green.get("commit") else ""
    lines = [
        f"the last green run ({green.get('run_id', '?')}, tree {old[:12]}{commit}) was "
        "for different code"
    ]
    if changed_files is None:
        return lines
    try:
        files = changed_files(old, tree.hash)
    except Exception as exc:  # a message must not crash the gate; it stays closed anyway
        return [*lines, f"(could not list the changed files: {type(exc).__name__}: {exc})"]
    lines.append(f"changed since then ({len(files)} file(s)):")
    lines.extend(f"  {f}" for f in files[:_MAX_FILES])
    if len(files) > _MAX_FILES:
        lines.append(f"  … and {len(files) - _MAX_FILES} more")
    return lines
