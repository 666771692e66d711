"""examples/ci/github-actions.yml: valid for GitHub, and its commands are staging's own.

The schema check runs check-jsonschema's bundled copy of GitHub's workflow schema
(offline). The commands are parsed with staging's own CLI parser, once per matrix value,
and the artifacts must carry each shard's gate record to where `staging gate` reads it.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from staging.cli import build_parser
from staging.gate.shards import Shard

REPO = Path(__file__).resolve().parents[3]
WORKFLOW = REPO / "examples" / "ci" / "github-actions.yml"
CHECK = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows"]


def _load(path: Path = WORKFLOW) -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    return data


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job["steps"])


def _expand(text: str, values: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name not in values:
            raise AssertionError(f"unexpected expression ${{{{ {name} }}}} in {text!r}")
        return values[name]

    return re.sub(r"\$\{\{(.*?)\}\}", one, text)


def test_the_workflow_is_valid_for_github() -> None:
    done = subprocess.run([*CHECK, str(WORKFLOW)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_can_fail(tmp_path: Path) -> None:
    """Not vacuous: the same check rejects the shard job without `runs-on`."""
    broken = tmp_path / "broken.yml"
    text = WORKFLOW.read_text(encoding="utf-8")
    broken.write_text(text.replace("    runs-on: ubuntu-latest\n", "", 1), encoding="utf-8")
    done = subprocess.run([*CHECK, str(broken)], capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert "$.jobs.staging: 'runs-on' is a required property" in done.stdout


def test_each_shard_job_runs_its_own_shard_of_n() -> None:
    job = _load()["jobs"]["staging"]
    shards = job["strategy"]["matrix"]["shard"]
    assert shards == list(range(1, len(shards) + 1)) and len(shards) >= 2
    (step,) = [s for s in _steps(job) if "-s staging" in s.get("run", "")]
    parsed = []
    for k in shards:
        words = shlex.split(_expand(step["run"], {"matrix.shard": str(k)}))
        assert words[0] == "nox" and "--" in words
        # `nox -s staging -- ARGS` runs `staging run ARGS` (noxfile.py): parse those.
        args = build_parser("run").parse_args(["run", *words[words.index("--") + 1 :]])
        assert args.command == "run"
        parsed.append(args.shard)
    # N on the command line is the matrix's size: every shard of one plan, no gap.
    assert parsed == [Shard(k, len(shards)) for k in shards]


def test_the_gate_command_parses_and_requires_signatures() -> None:
    job = _load()["jobs"]["deploy"]
    (step,) = [s for s in _steps(job) if "staging gate" in s.get("run", "")]
    words = shlex.split(step["run"])
    args = build_parser("gate").parse_args(words[1:])
    assert args.command == "gate" and args.require_signature
    assert args.deploy_command[:2] == ["--", "flyctl"]
    assert job["needs"] == "staging"
    assert "!cancelled()" in job["if"]  # gated even after a red shard, to name it


def test_the_artifacts_carry_every_shard_record_to_the_gates_store() -> None:
    jobs = _load()["jobs"]
    shards = jobs["staging"]["strategy"]["matrix"]["shard"]
    uploads = [
        s
        for s in _steps(jobs["staging"])
        if str(s.get("with", {}).get("path", "")).endswith(".staging/verdicts/")
    ]
    assert len(uploads) == 1, "one step uploads the shard's gate record"
    upload = uploads[0]
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert upload["with"]["include-hidden-files"] is True
    (download,) = [
        s
        for s in _steps(jobs["deploy"])
        if s.get("uses", "").startswith("actions/download-artifact@")
    ]
    # The same place on both sides: K-of-N.json files land side by side under the tree.
    assert download["with"]["path"] == upload["with"]["path"]
    assert download["with"]["merge-multiple"] is True
    names = {
        _expand(upload["with"]["name"], {"github.sha": "abc123", "matrix.shard": str(k)})
        for k in shards
    }
    assert len(names) == len(shards)  # artifact names are unique per workflow run
    pattern = _expand(download["with"]["pattern"], {"github.sha": "abc123"})
    assert all(fnmatch.fnmatch(name, pattern) for name in names)
    # Another commit's records are never downloaded.
    assert not fnmatch.fnmatch(names.pop().replace("abc123", "def456"), pattern)
