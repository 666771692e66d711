"""The gate over several verdicts of one tree: the shards of `staging run --shard K/N`
(often from several CI machines) and the tree's full verdict, if any.

Each verdict speaks for the pipelines it was asked to run: a shard for its share of the
plan, a full run for every configured pipeline (or its `--pipeline` subset). For each
pipeline the newest verdict that speaks for it decides, as a later run of a tree
replaces an earlier one's record. The gate opens only when every configured pipeline
(the union over the verdicts) is decided by a green verdict that ran it. So one shard
alone never opens it, a red shard closes it until a later run of that tree re-proves
its pipelines, and two shards claiming one pipeline (N changed between attempts) are
fine when the newer one is green. A verdict for another tree never counts; a signature
that does not verify closes the gate whichever verdict carries it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from staging.gate.coverage import Coverage
from staging.gate.decision import STOP, GateDecision, GateState, Tree, describe_tree
from staging.gate.shards import ShardInfo
from staging.gate.signing import KEY_ENV, SignatureState, verify
from staging.gate.store import is_conclusive


@dataclass(frozen=True)
class Record:
    path: Path
    verdict: dict[str, Any]
    coverage: Coverage
    shard: ShardInfo | None

    @property
    def run_id(self) -> str:
        return str(self.verdict.get("run_id", "?"))

    @property
    def label(self) -> str:
        kind = f"shard {self.shard}" if self.shard else "full run"
        return f"{kind} (run {self.run_id})"

    @property
    def passed(self) -> bool:
        return self.verdict.get("status") == "passed"

    @property
    def claims(self) -> tuple[str, ...]:
        if self.shard is not None:
            return self.shard.pipelines
        return self.coverage.requested or self.coverage.configured

    @property
    def order(self) -> tuple[str, str]:
        return (str(self.verdict.get("finished_at") or ""), self.run_id)

    def proves(self, pipeline: str) -> bool:
        return self.passed and pipeline in self.coverage.ran and not self.coverage.phases_not_run


def decide_union(
    found: Sequence[tuple[Path, dict[str, Any]]],
    tree: Tree,
    *,
    key: bytes | None,
    require_signature: bool,
    implied: bool,
) -> GateDecision:
    """Open only when the newest verdict for each configured pipeline is green and ran it."""
    code = describe_tree(tree)
    records, ignored = _records(found, tree)
    if not records:
        return GateDecision(
            GateState.NO_VERDICT,
            f"no staging run for this code ({code})",
            tuple(ignored),
            hint="run every shard (`staging run --shard K/N`, K = 1..N) on exactly this "
            "code, then gate with all their verdicts in .staging/verdicts/",
        )
    for record in records:
        if verify(record.verdict, key) is SignatureState.INVALID:
            return GateDecision(
                GateState.BAD_SIGNATURE,
                f"the verdict of {record.label} does not match its signature ({code})",
                (f"verdict: {record.path}",),
                hint=f"it was edited after signing, or signed with a different {KEY_ENV}; "
                "never edit verdicts — run that shard again with the same key",
                verdict=record.verdict,
            )
    deciding = _deciding(records)
    # No pipeline to decide (none configured): the newest verdict speaks for the tree.
    used = _unique(deciding.values()) or records[-1:]
    if require_signature:
        unsigned = [r for r in used if verify(r.verdict, key) is not SignatureState.VALID]
        if unsigned:
            return _unsigned(unsigned, code, implied)
    red = [r for r in used if not r.passed]
    if red:
        return _red(red, deciding, code, ignored)
    configured = _configured(records)
    missing = [n for n in configured if n not in deciding or not deciding[n].proves(n)]
    if missing:
        return _missing(missing, records, code, ignored)
    signed = " (signatures verified)" if key is not None and require_signature else ""
    return GateDecision(
        GateState.OPEN,
        f"staging passed for this code ({code}) across {len(used)} verdict(s){signed}",
        tuple(f"{r.label}: passed {', '.join(_decided_by(r, deciding))}" for r in used)
        + tuple(ignored),
        verdict=used[-1].verdict,
    )


def _records(
    found: Sequence[tuple[Path, dict[str, Any]]], tree: Tree
) -> tuple[list[Record], list[str]]:
    records, ignored = [], []
    for path, verdict in found:
        recorded = verdict.get("tree")
        tree_hash = recorded.get("hash") if isinstance(recorded, dict) else None
        coverage = Coverage.from_verdict(verdict)
        if tree_hash != tree.hash:
            ignored.append(f"ignored {path}: it is for tree {str(tree_hash)[:12]}, not this code")
        elif not is_conclusive(verdict):
            ignored.append(f"ignored {path}: an aborted run says nothing about the code")
        elif coverage is None:
            ignored.append(f"ignored {path}: it does not record which pipelines ran")
        else:
            records.append(Record(path, verdict, coverage, ShardInfo.from_verdict(verdict)))
    records.sort(key=lambda r: r.order)
    return records, ignored


def _deciding(records: Sequence[Record]) -> dict[str, Record]:
    """Each pipeline's deciding verdict: the newest that speaks for it (records sorted)."""
    deciding: dict[str, Record] = {}
    for record in records:
        for name in record.claims:
            deciding[name] = record
    return deciding


def _configured(records: Sequence[Record]) -> list[str]:
    """Every pipeline any verdict of this tree names as configured, first seen first."""
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record.coverage.configured))
    return list(names)


def _unique(records: Iterable[Record]) -> list[Record]:
    seen: dict[Path, Record] = {}
    for record in records:
        seen.setdefault(record.path, record)
    return sorted(seen.values(), key=lambda r: r.order)


def _decided_by(record: Record, deciding: dict[str, Record]) -> list[str]:
    return [n for n, r in deciding.items() if r.path == record.path]


def _unsigned(unsigned: list[Record], code: str, implied: bool) -> GateDecision:
    why = f"{KEY_ENV} is set, so signatures are required" if implied else "--require-signature"
    return GateDecision(
        GateState.UNSIGNED,
        f"{len(unsigned)} verdict(s) for this code are not signed and {why} ({code})",
        tuple(f"{r.label}: {r.path}" for r in unsigned),
        hint=f"set {KEY_ENV} in every shard job so each signs its verdict, and carry "
        ".staging/verdicts/ (the signed gate records), not .staging/runs/",
        verdict=unsigned[0].verdict,
    )


def _red(
    red: list[Record], deciding: dict[str, Record], code: str, ignored: list[str]
) -> GateDecision:
    details = []
    for record in red:
        diagnosis = record.verdict.get("diagnosis")
        diagnosis = diagnosis if isinstance(diagnosis, dict) else {}
        klass = diagnosis.get("class") or record.verdict.get("status", "failed")
        cause = diagnosis.get("cause") or "(no diagnosis recorded)"
        details.append(f"{record.label}: {klass}: {cause}")
        decided = _decided_by(record, deciding)
        if decided:
            details.append(f"  it is the newest run of: {', '.join(decided)}")
    details.extend(ignored)
    details.append(STOP.format(run=red[0].run_id))
    first = red[0].verdict.get("diagnosis")
    return GateDecision(
        GateState.RUN_FAILED,
        f"{', '.join(r.label for r in red)} failed for this code ({code})",
        tuple(details),
        hint=str(first.get("hint") or "") if isinstance(first, dict) else "",
        verdict=red[0].verdict,
    )


def _missing(
    missing: list[str], records: Sequence[Record], code: str, ignored: list[str]
) -> GateDecision:
    details = [f"{r.label}: passed {', '.join(r.claims)}" for r in records if r.passed]
    details.append(f"pipelines no verdict ran: {', '.join(missing)}")
    shards = _missing_shards(missing, records)
    details.extend(f"missing: shard {spec} ({', '.join(names)})" for spec, names in shards)
    details.extend(_plans_differ(records))
    details.extend(ignored)
    how = (
        "run " + ", ".join(f"`staging run --shard {spec}`" for spec, _ in shards)
        if shards
        else "run the shards (or a full `staging run`) that hold them"
    )
    return GateDecision(
        GateState.PARTIAL,
        f"the verdicts for this code do not cover every pipeline ({code})",
        tuple(details),
        hint=f"{how} on exactly this code and gate with every shard's verdict; "
        "a pass proves only the pipelines it ran",
        verdict=records[-1].verdict,
    )


def _missing_shards(
    missing: list[str], records: Sequence[Record]
) -> list[tuple[str, tuple[str, ...]]]:
    """("2/4", (c, d)) for each shard of the newest plan that holds a missing pipeline."""
    planned = [r.shard for r in records if r.shard is not None and r.shard.plan]
    if not planned:
        return []
    plan = planned[-1]
    found = []
    for index, names in enumerate(plan.plan, start=1):
        gap = tuple(n for n in names if n in missing)
        if gap:
            found.append((f"{index}/{plan.count}", gap))
    return found


def _plans_differ(records: Sequence[Record]) -> list[str]:
    prints = {r.shard.fingerprint for r in records if r.shard is not None}
    counts = {r.shard.count for r in records if r.shard is not None}
    if len(prints) <= 1 or len(counts) > 1:
        return []
    return [
        "the shards were cut from different plans (different durations on different "
        "machines?): commit staging-durations.json so every machine balances alike"
    ]
