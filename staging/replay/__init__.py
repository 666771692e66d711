"""The replay gate: recorded workflow histories must still replay against the app's code.

- `probe`: find the history files, run `probes/replay_probe.py` in the app's interpreter
  (temporalio's `Replayer`, plus a bisection that pins the diverging workflow task), read
  its report;
- `messages`: the SDK core's non-determinism message -> the event where replay diverged;
- `diagnose`: at most one `Diagnosis` (`replay.nondeterminism` when a history no longer
  replays, `config.invalid` when a history file is not one), notes and a table.

A divergence inside the final workflow task of a *closed* history is a note, not a
failure: no running workflow can be past the point where that one ended, so every
in-flight workflow still replays (the new code merely ends differently). `strict=True`
(`staging replay --strict`) fails it like any other.
"""

from __future__ import annotations

from staging.replay.diagnose import diagnose, history_rows, replay_notes
from staging.replay.messages import Divergence, core_messages, locate, parse_nondeterminism
from staging.replay.probe import (
    REPLAY_PROBE,
    HistoryResult,
    ReplayReport,
    find_histories,
    run_replay_probe,
    worker_target,
)

__all__ = [
    "REPLAY_PROBE",
    "Divergence",
    "HistoryResult",
    "ReplayReport",
    "core_messages",
    "diagnose",
    "find_histories",
    "history_rows",
    "locate",
    "parse_nondeterminism",
    "replay_notes",
    "run_replay_probe",
    "worker_target",
]
