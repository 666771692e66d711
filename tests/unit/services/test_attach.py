"""`backend = "attach"` without a cluster: config, secrets from named variables, owner
records and their liveness rule, per-run names, task-queue suffixes and placeholders."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from typing import Any

import pytest

from staging.config.model import StagingConfig
from staging.config.render import placeholder_values, queue_values, render_env, validate_templates
from staging.errors import ConfigError
from staging.services.attach.namespaces import queue_query
from staging.services.attach.pg import run_name
from staging.services.attach.records import OwnerRecord
from staging.services.attach.target import resolve
from staging.services.base import PostgresEndpoint
from staging.services.temporal_endpoint import TemporalEndpoint, TemporalTLS

ADMIN = "postgresql://admin:s%40cret%3Ax@db.internal:6543/postgres"


def _config(**attach: Any) -> StagingConfig:
    section = {"temporal_address": "temporal.internal:7233", "namespace": "staging"}
    section |= {"postgres_admin_url_env": "PG_ADMIN"} | attach
    return StagingConfig.model_validate(
        {
            "backend": "attach",
            "attach": {k: v for k, v in section.items() if v is not None},
            "worker": {"command": ["python", "w.py"], "task_queue": "orders"},
            "pipelines": [
                {"name": "a", "workflow": "A"},
                {"name": "b", "workflow": "B", "task_queue": "emails"},
            ],
        }
    )


def test_attach_needs_its_section() -> None:
    with pytest.raises(ValueError, match="temporal_address, namespace or namespace_prefix"):
        StagingConfig.model_validate(
            {"backend": "attach", "worker": {"command": ["x"], "task_queue": "q"}}
        )


def test_namespace_and_prefix_exclude_each_other() -> None:
    with pytest.raises(ValueError, match="not both"):
        _config(namespace_prefix="ci-")


def test_mtls_needs_cert_and_key() -> None:
    with pytest.raises(ValueError, match="go together"):
        _config(tls_cert_env="CERT")


def test_env_names_are_checked() -> None:
    with pytest.raises(ValueError, match="not a valid environment variable name"):
        _config(api_key_env="not a name")


def test_resolve_reads_secrets_from_the_named_variables_only() -> None:
    cfg = _config(api_key_env="TEMPORAL_KEY", tls_ca_env="CA_PATH")
    environ = {"PG_ADMIN": ADMIN, "TEMPORAL_KEY": "k-123", "CA_PATH": "/etc/ca.pem"}
    target = resolve(cfg.attach, cfg.timeout, environ)
    t = target.temporal
    assert (t.host, t.port, t.namespace, t.api_key) == (
        "temporal.internal",
        7233,
        "staging",
        "k-123",
    )
    assert t.tls == TemporalTLS(server_ca="/etc/ca.pem")
    assert (target.admin.host, target.admin.port, target.admin.user) == (
        "db.internal",
        6543,
        "admin",
    )
    assert target.lease == cfg.timeout + cfg.attach.lease_margin
    assert "s@cret:x" in target.admin.secrets()
    assert "s%40cret" not in repr(target) and "k-123" not in repr(target)


@pytest.mark.parametrize(
    ("environ", "state"), [({}, "is not set"), ({"TEMPORAL_KEY": " "}, "is empty")]
)
def test_an_unset_variable_is_a_config_error_naming_it(environ: dict[str, str], state: str) -> None:
    cfg = _config(api_key_env="TEMPORAL_KEY")
    with pytest.raises(ConfigError) as caught:
        resolve(cfg.attach, cfg.timeout, {"PG_ADMIN": ADMIN, **environ})
    assert "TEMPORAL_KEY" in str(caught.value) and state in str(caught.value)
    assert caught.value.hint and "export TEMPORAL_KEY" in caught.value.hint


def test_a_broken_admin_url_is_reported_without_its_value() -> None:
    cfg = _config()
    with pytest.raises(ConfigError) as caught:
        resolve(cfg.attach, cfg.timeout, {"PG_ADMIN": "host=x password='s3cr3t"})
    assert "PG_ADMIN" in str(caught.value) and "s3cr3t" not in str(caught.value)


def test_a_bad_temporal_address_is_a_config_error() -> None:
    cfg = _config(temporal_address="temporal.internal")
    with pytest.raises(ConfigError, match="host:port"):
        resolve(cfg.attach, cfg.timeout, {"PG_ADMIN": ADMIN})


def test_tls_false_stays_plain_with_no_files() -> None:
    cfg = _config(tls=False)
    assert resolve(cfg.attach, cfg.timeout, {"PG_ADMIN": ADMIN}).temporal.uses_tls is False


def test_task_queues_are_suffixed_once_and_rendered_as_settings() -> None:
    cfg = _config()
    assert cfg.task_queues() == {"orders": "orders", "emails": "emails"}
    renamed = cfg.suffix_task_queues("-r1")
    assert renamed == {"orders": "orders-r1", "emails": "emails-r1"}
    assert cfg.suffix_task_queues("-r2") == renamed  # once per run
    assert cfg.worker.task_queue == "orders-r1" and cfg.pipelines[1].task_queue == "emails-r1"
    assert cfg.pipelines[0].task_queue is None  # still "the worker's"
    templates = {"Q": "{worker.task_queue}", "E": "{task_queue.emails}"}
    validate_templates(templates, source="pyproject.toml")
    values = placeholder_values(
        PostgresEndpoint("h", 1, "u", "p", "d"),
        TemporalEndpoint("h", 2, "ns"),
        {},
        queue_values(cfg.worker.task_queue, cfg.task_queues()),
    )
    assert render_env(templates, values, source="x") == {"Q": "orders-r1", "E": "emails-r1"}
    with pytest.raises(ConfigError, match=r"task_queue\.nope"):
        render_env({"X": "{task_queue.nope}"}, values, source="x")


def test_run_names_are_plain_postgres_identifiers() -> None:
    name = run_name("App-DB", "20261201-073323-ab12cd")
    assert name == "app_db_20261201_073323_ab12cd"
    assert len(run_name("x" * 80, "20261201-073323-ab12cd")) == 63
    assert run_name("1st", "r")[0].isalpha()


def test_queue_query_quotes_names() -> None:
    assert queue_query(["a", "b'c"]) == (
        "ExecutionStatus = 'Running' AND (TaskQueue = 'a' OR TaskQueue = 'b\\'c')"
    )


def _record(**kw: Any) -> OwnerRecord:
    base = OwnerRecord.mine("r1", 100.0, database="d", role="r", task_queues=("q-r1",))
    return OwnerRecord(**{**base.__dict__, **kw})


def test_a_record_round_trips_and_ignores_strangers() -> None:
    record = _record(namespace="ns", namespace_created=True)
    assert OwnerRecord.parse(record.text()) == record
    assert OwnerRecord.parse("a comment someone wrote") is None
    assert OwnerRecord.parse("staging-owner {not json") is None


def test_a_live_owner_on_this_host_is_never_swept() -> None:
    assert not _record().abandoned()
    assert not _record(expires=0).abandoned()  # the pid is checked here, not the lease


def test_a_dead_owner_on_this_host_is_swept() -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert _record(pid=int(dead.stdout)).abandoned()
    assert _record(start=1).abandoned()  # our pid, but another start time: pid reused


def test_another_hosts_record_is_swept_after_its_lease() -> None:
    other = _record(host=socket.gethostname() + "-elsewhere")
    now = time.time()
    assert not other.abandoned(now=now)
    assert other.abandoned(now=other.expires + 1)


def test_a_detached_run_is_kept_unless_asked() -> None:
    gone = _record(pid=os.getpid(), start=1).detach()
    assert not gone.abandoned()
    assert gone.abandoned(include_detached=True)
    assert not _record().detach().abandoned(include_detached=True)  # its owner still runs


def test_another_hosts_detached_run_is_never_swept_from_here() -> None:
    other = _record(host=socket.gethostname() + "-elsewhere").detach()
    assert not other.abandoned(include_detached=True, now=other.expires + 1)


def test_a_sweep_removes_only_abandoned_runs_of_its_own_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from contextlib import nullcontext

    from staging.services.attach import backend as attach_backend
    from staging.services.attach import pg

    cfg = _config()
    backend = attach_backend.AttachBackend(cfg, {"PG_ADMIN": ADMIN})
    ours = backend.target.temporal.address
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    records = [
        _record(run_id="dead", pid=int(dead.stdout), temporal=ours),
        _record(run_id="alive", temporal=ours),
        _record(run_id="elsewhere", pid=int(dead.stdout), temporal="other:7233"),
        _record(run_id="detached", pid=int(dead.stdout), temporal=ours).detach(),
    ]
    monkeypatch.setattr(pg, "admin_connection", lambda admin: nullcontext(None))
    monkeypatch.setattr(pg, "run_records", lambda conn: records)
    monkeypatch.setattr(pg, "orphan_databases", lambda conn: [])
    removed: list[str] = []
    monkeypatch.setattr(backend, "_remove", lambda r: removed.append(r.run_id) or r.run_id)
    assert backend.sweep() == ["dead"]
    assert backend.sweep(include_detached=True) == ["dead", "detached"]


def test_one_run_that_cannot_be_removed_does_not_keep_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from contextlib import nullcontext

    from staging.services.attach import backend as attach_backend
    from staging.services.attach import pg

    cfg = _config()
    backend = attach_backend.AttachBackend(cfg, {"PG_ADMIN": ADMIN})
    ours = backend.target.temporal.address
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    records = [
        _record(run_id=name, pid=int(dead.stdout), temporal=ours) for name in ("a", "b", "c")
    ]
    monkeypatch.setattr(pg, "admin_connection", lambda admin: nullcontext(None))
    monkeypatch.setattr(pg, "run_records", lambda conn: records)
    monkeypatch.setattr(pg, "orphan_databases", lambda conn: [])

    def remove(record: OwnerRecord) -> str:
        if record.run_id == "a":
            raise RuntimeError('database "x" does not exist\nDETAIL: dropped meanwhile')
        return record.run_id

    monkeypatch.setattr(backend, "_remove", remove)
    found = backend.sweep()
    assert found[1:] == ["b", "c"]
    assert found[0].startswith("attach: run a (")
    assert found[0].endswith('not removed, the next sweep retries: RuntimeError: database "x" '
                             "does not exist")  # fmt: skip


def test_mtls_files_come_from_the_named_variables() -> None:
    cfg = _config(tls_cert_env="CERT", tls_key_env="KEY", tls_server_name="t.internal")
    environ = {"PG_ADMIN": ADMIN, "CERT": "/s/c.pem", "KEY": "/s/k.pem"}
    tls = resolve(cfg.attach, cfg.timeout, environ).temporal.tls
    assert tls == TemporalTLS("/s/c.pem", "/s/k.pem", None, "t.internal")


def test_an_admin_url_nobody_answers_is_services_unavailable_without_the_password() -> None:
    from staging.errors import ServiceUnavailable
    from staging.services.attach.pg import admin_connection
    from staging.services.attach.target import admin_url

    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://admin:s%40cret%3Ax@127.0.0.1:{port}/postgres"
    with (
        pytest.raises(ServiceUnavailable) as caught,
        admin_connection(admin_url({"PG": url}, "PG")),
    ):
        pass
    text = str(caught.value)
    assert "PG" in text and "does not answer" in text and caught.value.hint
    assert "s@cret" not in text and "s%40cret" not in text
