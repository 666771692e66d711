"""`[[tool.staging.services]]`: the syntax loads, bad input is a `config.invalid` naming the
entry with a fix, and `{NAME.host}` / `{NAME.port}` render from the services' endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from staging.config.load import load_config
from staging.config.render import placeholder_values, render_env, validate_templates
from staging.errors import ConfigError
from staging.result import FailureClass
from staging.services.base import PostgresEndpoint, ServiceSpec, TemporalEndpoint
from staging.services.generic_spec import GenericEndpoint, ReadyCheck

HEAD = """
[project]
name = "app"

[tool.staging]
{top}

[tool.staging.worker]
command = ["python", "-m", "app.worker"]
task_queue = "app"
"""

REDIS = """
[[tool.staging.services]]
name = "redis"
image = "staging/redis:7"
command = ["redis-server", "--port", "{port}", "--save", "", "--appendonly", "no"]
ports = [6379]
env = {}
ready = { tcp = true }
ready_timeout = 30
"""

ENV = """
[tool.staging.env]
REDIS_URL = "redis://{redis.host}:{redis.port}/0"
"""


def _project(tmp_path: Path, services: str = REDIS, env: str = ENV, top: str = "") -> Path:
    text = HEAD.replace("{top}", top) + services + env
    (tmp_path / "pyproject.toml").write_text(text, encoding="utf-8")
    return tmp_path


def _error(project: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(project, environ={})
    assert info.value.failure_class is FailureClass.CONFIG_INVALID
    text = str(info.value)
    assert "Hint: " in text or "fix: " in text
    return text


def test_the_documented_syntax_loads_into_the_spec(tmp_path: Path) -> None:
    cfg = load_config(_project(tmp_path), environ={}).config
    (redis,) = cfg.services
    assert (redis.name, redis.image, redis.ports, redis.ready.tcp) == (
        "redis",
        "staging/redis:7",
        [6379],
        True,
    )
    spec = ServiceSpec.from_config(cfg, "r1")
    (entry,) = spec.services
    assert entry.command == ("redis-server", "--port", "{port}", "--save", "", "--appendonly", "no")
    assert entry.ready == ReadyCheck(tcp=True) and entry.port == 6379
    assert spec.images() == (cfg.postgres.image, cfg.temporal.image, "staging/redis:7")


def test_defaults_ready_tcp_and_image_only_or_command_only(tmp_path: Path) -> None:
    services = """
[[tool.staging.services]]
name = "cache"
image = "staging/redis:7"
ports = [6379]

[[tool.staging.services]]
name = "mail"
command = ["mailcatcher", "--smtp-port", "{port}"]
ports = [1025]
ready = { http = "/healthz" }
"""
    cfg = load_config(_project(tmp_path, services, env=""), environ={}).config
    cache, mail = cfg.services
    assert cache.ready.tcp and cache.command == [] and cache.ready_timeout == 30
    assert mail.ready.http == "/healthz" and mail.image == ""


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        (("ports = [6379]\n", ""), ["services[0].ports", "required key 'ports'"]),
        (("ports = [6379]", "ports = [0]"), ["not port numbers: [0]", "between 1 and 65535"]),
        (
            (
                'image = "staging/redis:7"\ncommand = ["redis-server", "--port", "{port}", '
                '"--save", "", "--appendonly", "no"]\n',
                "",
            ),
            ["neither an image nor a command", "image = ", "command = "],
        ),
        (('name = "redis"', 'name = "postgres"'), ["taken by staging's own placeholders"]),
        (('name = "redis"', 'name = "my redis"'), ["cannot be a placeholder root"]),
        (
            ("ready = { tcp = true }", 'ready = { tcp = true, http = "/" }'),
            ["exactly one check, got tcp and http", "{ tcp = true }"],
        ),
        (("ready = { tcp = true }", 'ready = { http = "healthz" }'), ["must be a path"]),
        (("ready = { tcp = true }", "ready = { tpc = true }"), ["unknown key 'tpc'", "tcp"]),
        (("ready_timeout = 30", "ready_timeout = 0"), ["ready_timeout"]),
        (('"--port", "{port}", ', ""), ["never receives the port", '"--port", "{port}"']),
        (("env = {}", "env = {}\nvolumes = []"), ["unknown key 'volumes'"]),
    ],
)
def test_bad_entries_name_the_key_and_the_fix(
    tmp_path: Path, change: tuple[str, str], needles: list[str]
) -> None:
    old, new = change
    assert old in REDIS
    text = _error(_project(tmp_path, REDIS.replace(old, new)))
    assert "tool.staging.services" in text
    for needle in needles:
        assert needle in text, f"{needle!r} not in:\n{text}"


def test_names_are_unique(tmp_path: Path) -> None:
    text = _error(_project(tmp_path, REDIS + REDIS))
    assert "names must be unique; repeated: redis" in text


def test_a_placeholder_naming_no_service_fails_at_load(tmp_path: Path) -> None:
    text = _error(_project(tmp_path, env=ENV.replace("{redis.host}", "{redsi.host}")))
    assert "{redsi.host} names no service (services: redis)" in text
    assert "REDIS_URL" in text
    text = _error(_project(tmp_path, env=ENV.replace("{redis.port}", "{redis.hots}")))
    assert "unknown placeholder {redis.hots}" in text and "{redis.host}" in text


def test_attach_has_no_generic_services(tmp_path: Path) -> None:
    attach = (
        'backend = "attach"\n[tool.staging.attach]\ntemporal_address = "t:7233"\n'
        'namespace = "ns"\npostgres_admin_url_env = "PG_ADMIN"\n'
    )
    text = _error(_project(tmp_path, top=attach))
    assert "backend = \"attach\" cannot start [[tool.staging.services]] ('redis')" in text
    assert 'backend = "auto", "docker" or "process"' in text


def test_an_explicit_backend_needs_what_it_runs(tmp_path: Path) -> None:
    image_only = REDIS.replace(
        'command = ["redis-server", "--port", "{port}", "--save", "", "--appendonly", "no"]\n', ""
    )
    text = _error(_project(tmp_path, image_only, top='backend = "process"'))
    assert 'backend = "process" needs a command for every service' in text
    assert load_config(_project(tmp_path, image_only, top='backend = "docker"'), environ={})


def test_an_unregistered_backend_lists_the_registered_ones(tmp_path: Path) -> None:
    text = _error(_project(tmp_path, top='backend = "podman"'))
    assert "'auto'" in text and "'docker'" in text and "'process'" in text


def test_generic_placeholders_render_from_endpoints() -> None:
    validate_templates({"R": "redis://{redis.host}:{redis.port}/0"}, source="t")
    with pytest.raises(ConfigError) as info:
        validate_templates({"R": "{postgres.hots}"}, source="t")
    assert "did you mean {postgres.host}" in str(info.value)
    with pytest.raises(ConfigError):
        validate_templates({"R": "{redis.url}"}, source="t")  # generic kinds: host, port
    pg = PostgresEndpoint("127.0.0.1", 5432, "app", "pw", "app")
    temporal = TemporalEndpoint("127.0.0.1", 7233, "default")
    services = {"redis": GenericEndpoint("redis", "127.0.0.1", 16379)}
    values = placeholder_values(pg, temporal, {}, services=services)
    rendered = render_env({"R": "redis://{redis.host}:{redis.port}/0"}, values, source="t")
    assert rendered == {"R": "redis://127.0.0.1:16379/0"}
    assert values["postgres.url"] == "postgresql://app:pw@127.0.0.1:5432/app"
    without = placeholder_values(pg, temporal, {})
    with pytest.raises(ConfigError) as info:
        render_env({"R": "{redis.port}"}, without, source="t")
    assert "unknown placeholder {redis.port}" in str(info.value)
