"""The two registries: service kinds (postgres, temporal, generic) and backends (docker,
process, attach), and how `Environment` / `select` / the CLI read them."""

from __future__ import annotations

import argparse
import types
from collections.abc import Iterator
from typing import Any

import pytest

from staging.commands import doctor as doctor_command
from staging.commands import run as run_command
from staging.config.model import PostgresConfig, TemporalConfig
from staging.errors import ConfigError, ServiceUnavailable
from staging.services import backends, images, select
from staging.services.base import PostgresEndpoint, ServiceSpec, TemporalEndpoint
from staging.services.environment import check_backend_kinds, service_requests
from staging.services.generic_spec import GenericEndpoint, GenericSpec
from staging.services.kinds import ServiceKind, ServiceRequest, get_kind, kinds, register_kind
from staging.services.process_backend import ProcessBackend, ProcessPostgres, ProcessTemporal

REDIS = GenericSpec(name="redis", image="staging/redis:7", command=("redis-server",), ports=(6379,))


def test_builtin_kinds_and_their_placeholder_keys() -> None:
    assert [k.name for k in kinds()][:3] == ["postgres", "temporal", "generic"]
    assert get_kind("postgres").placeholder_keys == (
        "host", "port", "user", "password", "database", "url",
    )  # fmt: skip
    assert get_kind("temporal").placeholder_keys == ("address", "host", "port", "namespace")
    assert get_kind("generic").placeholder_keys == ("host", "port")
    with pytest.raises(ConfigError) as info:
        get_kind("mysql")
    assert "postgres | temporal | generic" in str(info.value)


def test_default_images_are_defined_once() -> None:
    assert get_kind("postgres").default_image == images.POSTGRES == PostgresConfig().image
    assert get_kind("temporal").default_image == images.TEMPORAL == TemporalConfig().image
    spec = ServiceSpec(run_id="r")
    assert (spec.postgres_image, spec.temporal_image) == (images.POSTGRES, images.TEMPORAL)


def test_placeholders_come_from_the_kind() -> None:
    pg = PostgresEndpoint("127.0.0.1", 5, "u", "p@ss", "db")
    assert get_kind("postgres").placeholders("postgres", pg)["postgres.url"] == pg.url
    temporal = TemporalEndpoint("127.0.0.1", 7233, "ns")
    assert get_kind("temporal").placeholders("temporal", temporal) == {
        "temporal.address": "127.0.0.1:7233",
        "temporal.host": "127.0.0.1",
        "temporal.port": "7233",
        "temporal.namespace": "ns",
    }
    redis = GenericEndpoint("redis", "127.0.0.1", 16379)
    assert get_kind("generic").placeholders("redis", redis) == {
        "redis.host": "127.0.0.1",
        "redis.port": "16379",
    }


def test_kinds_create_the_backends_services(tmp_path: Any) -> None:
    from staging.services.generic_process import ProcessGeneric

    backend = ProcessBackend(tmp_path)
    spec = ServiceSpec(run_id="r1", services=(REDIS,))
    made = {
        r.name: get_kind(r.kind).create(backend, spec, r) for r in service_requests(spec, "secret")
    }
    assert isinstance(made["postgres"], ProcessPostgres)
    assert isinstance(made["temporal"], ProcessTemporal)
    assert isinstance(made["redis"], ProcessGeneric) and made["redis"].name == "redis"
    assert getattr(made["redis"], "ready_timeout", None) == REDIS.ready_timeout
    assert not any(s.alive() for s in made.values())  # objects only: nothing started


class _Attached:
    """A backend registered beside docker/process, with the `Backend` protocol's methods."""

    name = "stand-in"

    def postgres(self, spec: ServiceSpec, password: str) -> Any:
        return types.SimpleNamespace(name="postgres", via="backend", password=password)

    def temporal(self, spec: ServiceSpec) -> Any:
        return types.SimpleNamespace(name="temporal", via="backend")


_ATTACHED: Any = _Attached()


def test_other_backends_are_asked_through_the_backend_protocol() -> None:
    spec = ServiceSpec(run_id="r1")
    pg = get_kind("postgres").create(_Attached(), spec, ServiceRequest("postgres", "postgres", "p"))
    assert getattr(pg, "via", None) == "backend" and getattr(pg, "password", None) == "p"
    request = ServiceRequest("generic", "redis", generic=REDIS)
    with pytest.raises(ConfigError) as info:
        get_kind("generic").create(_Attached(), spec, request)
    assert "the stand-in backend cannot start generic services ('redis')" in str(info.value)
    assert "docker | process" in str(info.value)


def test_generic_service_lacking_what_the_backend_runs() -> None:
    spec = ServiceSpec(run_id="r1")
    no_image = GenericSpec(name="redis", command=("redis-server",), ports=(6379,))
    request = ServiceRequest("generic", "redis", generic=no_image)
    docker_backend = types.SimpleNamespace(name="docker")
    with pytest.raises(ConfigError) as info:
        get_kind("generic").create(docker_backend, spec, request)
    assert "cannot run on the docker backend: it has no image" in str(info.value)


@pytest.fixture
def stand_in() -> Iterator[list[Any]]:
    made: list[Any] = []

    def factory(options: backends.BackendOptions) -> Any:
        made.append(options.config)
        return _Attached()

    backends.register_backend("standin", factory, "a stand-in for tests", local=False)
    yield made
    backends.unregister_backend("standin")


def test_one_backend_registry_feeds_choices_and_select(stand_in: list[Any]) -> None:
    assert backends.backend_choices()[:3] == ("auto", "docker", "process")
    assert "standin" in backends.backend_choices()
    assert "standin (a stand-in for tests)" in backends.help_text()
    assert "standin" not in [b.name for b in backends.local_backends()]
    backend, reason = select.choose_backend("standin", config="the config")
    assert isinstance(backend, _Attached) and reason == "the standin backend was requested"
    assert stand_in == ["the config"]  # the factory got the run's config
    with pytest.raises(ConfigError) as info:
        backends.get_backend("podman")
    assert "auto | docker | process" in str(info.value) and "standin" in str(info.value)
    with pytest.raises(ValueError):
        backends.register_backend("auto", lambda o: _ATTACHED, "no")


def test_an_unreachable_registered_backend_says_why(stand_in: list[Any]) -> None:
    backends.register_backend(
        "standin", lambda o: _ATTACHED, "a stand-in", available=lambda: "cluster unreachable"
    )
    with pytest.raises(ServiceUnavailable) as info:
        select.choose_backend("standin")
    assert info.value.observed == "cluster unreachable"


def test_auto_takes_process_when_a_generic_service_has_no_image(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(select, "docker_engine_status", lambda: (True, "Docker 27"))
    monkeypatch.setattr(select, "missing_images", lambda images: [])
    backend, reason = select.choose_backend("auto", docker_possible=False)
    assert isinstance(backend, ProcessBackend) and "has no image" in reason


def test_generic_services_on_a_backend_without_them_fail_before_anything_starts() -> None:
    spec = ServiceSpec(run_id="r1", services=(REDIS,))
    check_backend_kinds(spec, "docker")
    check_backend_kinds(spec, "auto")
    check_backend_kinds(ServiceSpec(run_id="r1"), "attach")
    with pytest.raises(ConfigError) as info:
        check_backend_kinds(spec, "attach")
    assert "backend = 'attach' cannot start the [[tool.staging.services]] 'redis'" in str(
        info.value
    )


def test_the_cli_offers_the_registered_backends(stand_in: list[Any]) -> None:
    for command in (run_command, doctor_command):
        parser = argparse.ArgumentParser()
        command.add_parser(parser.add_subparsers())
        name = command.__name__.rsplit(".", 1)[-1]
        args = parser.parse_args([name, "--backend", "standin"])
        assert args.backend == "standin"


def test_adding_a_kind_is_one_registration() -> None:
    made: list[str] = []

    def factory(backend: Any, spec: ServiceSpec, request: ServiceRequest) -> Any:
        made.append(request.name)
        return types.SimpleNamespace(name=request.name)

    kind = ServiceKind(
        name="mailpit",
        description="a mail catcher",
        placeholder_keys=("smtp",),
        values=lambda endpoint: {"smtp": f"smtp://{endpoint}"},
        factories={"process": factory},
    )
    register_kind(kind)
    try:
        assert get_kind("mailpit") is kind and kind.supports("process")
        assert not kind.supports("docker")
        kind.create(types.SimpleNamespace(name="process"), ServiceSpec("r"), ServiceRequest(
            "mailpit", "mail"))  # fmt: skip
        assert made == ["mail"]
        assert kind.placeholders("mail", "h:1") == {"mail.smtp": "smtp://h:1"}
    finally:
        from staging.services import kinds as registry

        registry._REGISTRY.pop("mailpit")


class _Sweepable:
    name = "sweeper"

    def __init__(self, removed: list[str]) -> None:
        self.removed = removed

    def sweep(self, *, include_detached: bool = False) -> list[str]:
        return [f"{r} (detached too: {include_detached})" for r in self.removed]

    def stop_run(self, run_id: str) -> list[str]:
        return [f"stopped {run_id}"]


def test_down_reads_the_backend_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    from staging.commands import down

    sweeper: Any = _Sweepable(["container x"])
    never: Any = _Sweepable(["never"])
    reachable = backends.BackendInfo("sweeper", lambda o: sweeper, "reachable", True, None)
    unreachable = backends.BackendInfo(
        "gone", lambda o: never, "no engine", True, lambda: "no engine answers"
    )
    monkeypatch.setattr(down, "local_backends", lambda: [reachable, unreachable])
    assert down._sweep_all(None) == ["container x (detached too: True)"]
    monkeypatch.setattr(down, "get_backend", {"sweeper": reachable, "gone": unreachable}.get)
    monkeypatch.setattr(down, "clear_detached", lambda run_id: None)
    assert down._stop_run("sweeper", "r1") == ["stopped r1"]
    with pytest.raises(ConfigError) as info:
        down._stop_run("gone", "r1")
    assert info.value.observed == "no engine answers"
    assert "not reachable here" in info.value.message
