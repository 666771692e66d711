"""`load_config`: precedence, provenance, and errors that name the key, the file and a fix."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from staging.config.load import env_override_names, load_config
from staging.errors import ConfigError
from staging.result import FailureClass

WORKER = """
[tool.staging.worker]
command = ["python", "-m", "app.worker"]
task_queue = "app"
"""

FULL = (
    """
[project]
name = "app"

[tool.staging]
timeout = 120

[tool.staging.postgres]
image = "postgres:17"

[tool.staging.settings]
class = "app.settings:Settings"

[tool.staging.env]
DB_PASSWORD = "{postgres.password}"
SLACK_WEBHOOK_URL = "{capture.slack}"
"""
    + WORKER
    + """
[[tool.staging.pipelines]]
name = "daily"
command = ["python", "scripts/run.py"]
"""
)


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(text, encoding="utf-8")
    return tmp_path


def load_error(project: Path, **kwargs: object) -> ConfigError:
    kwargs.setdefault("environ", {})
    with pytest.raises(ConfigError) as info:
        load_config(project, **kwargs)  # type: ignore[arg-type]
    return info.value


def test_file_values_defaults_and_resolved_paths(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, FULL), environ={})
    assert loaded.config.timeout == 120
    assert loaded.config.postgres.image == "postgres:17"
    assert loaded.config.settings.class_ == "app.settings:Settings"
    assert loaded.pyproject == (tmp_path / "pyproject.toml").resolve()
    assert loaded.project_dir == tmp_path.resolve()
    assert loaded.app_dir == tmp_path.resolve()
    assert loaded.python == sys.executable
    assert loaded.sources["timeout"] == "file"
    assert loaded.sources["postgres.image"] == "file"
    assert loaded.sources["settings.class"] == "file"
    assert loaded.sources["env.DB_PASSWORD"] == "file"
    assert loaded.sources["pipelines"] == "file"
    assert loaded.sources["backend"] == "default"
    assert loaded.sources["postgres.user"] == "default"
    assert loaded.sources["worker.ready_timeout"] == "default"
    assert loaded.sources["setup"] == "default"


def test_accepts_the_pyproject_path_itself(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, FULL) / "pyproject.toml", environ={})
    assert loaded.config.worker.task_queue == "app"


def test_precedence_default_file_env_cli(tmp_path: Path) -> None:
    environ = {
        "STAGING_TIMEOUT": "60",
        "STAGING_POSTGRES_IMAGE": "postgres:18",
        "STAGING_BACKEND": "docker",
        "STAGING_TEMPORAL_IMAGE": "temporal:env",
        "STAGING_WORKER_TASK_QUEUE": "from-env",
        "STAGING_SETTINGS_CLASS": "other.settings:S",
        "STAGING_REQUIRE_DOCKER": "1",  # not config: ignored
    }
    loaded = load_config(
        write(tmp_path, FULL),
        environ=environ,
        cli={"backend": "process", "timeout": 30, "temporal.namespace": None},
    )
    cfg = loaded.config
    assert (cfg.timeout, cfg.backend) == (30, "process")
    assert cfg.postgres.image == "postgres:18"
    assert cfg.temporal.image == "temporal:env"
    assert cfg.worker.task_queue == "from-env"
    assert cfg.worker.command == ["python", "-m", "app.worker"]  # the file's, merged
    assert cfg.settings.class_ == "other.settings:S"
    assert cfg.temporal.namespace == "default"  # a None CLI value is "not given"
    assert loaded.sources["timeout"] == "cli"
    assert loaded.sources["backend"] == "cli"
    assert loaded.sources["postgres.image"] == "env:STAGING_POSTGRES_IMAGE"
    assert loaded.sources["temporal.image"] == "env:STAGING_TEMPORAL_IMAGE"
    assert loaded.sources["worker.task_queue"] == "env:STAGING_WORKER_TASK_QUEUE"
    assert loaded.sources["worker.command"] == "file"
    assert loaded.sources["temporal.namespace"] == "default"


def test_env_override_names_cover_the_documented_ones() -> None:
    names = env_override_names()
    for var in (
        "STAGING_BACKEND",
        "STAGING_TIMEOUT",
        "STAGING_POSTGRES_IMAGE",
        "STAGING_TEMPORAL_IMAGE",
        "STAGING_PYTHON",
        "STAGING_SETTINGS_DELIVERY",
        "STAGING_WORKER_READY_TIMEOUT",
    ):
        assert var in names
    assert "STAGING_SETTINGS_REQUIRED" not in names  # lists are not env-overridable


def test_python_resolution(tmp_path: Path) -> None:
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    interp = venv_bin / "python"
    interp.write_text("#!/bin/sh\n")
    interp.chmod(0o755)
    text = FULL.replace("timeout = 120", 'timeout = 120\npython = ".venv/bin/python"')
    loaded = load_config(write(tmp_path, text), environ={})
    assert loaded.python == str(interp)

    by_name = load_config(tmp_path, environ={"STAGING_PYTHON": "python", "PATH": str(venv_bin)})
    assert by_name.python == str(interp)
    assert by_name.sources["python"] == "env:STAGING_PYTHON"


def test_app_dir_is_relative_to_the_pyproject(tmp_path: Path) -> None:
    (tmp_path / "src" / "app").mkdir(parents=True)
    text = FULL.replace("timeout = 120", 'timeout = 120\napp_dir = "src/app"')
    loaded = load_config(write(tmp_path, text), environ={})
    assert loaded.app_dir == (tmp_path / "src" / "app").resolve()


# --- errors: each names the key and the file, states expected/observed, and has a Hint ---


def assert_names(err: ConfigError, *needles: str) -> None:
    text = str(err)
    assert err.failure_class is FailureClass.CONFIG_INVALID
    assert "Hint: " in text
    for needle in needles:
        assert needle in text, f"{needle!r} not in:\n{text}"


def test_missing_pyproject(tmp_path: Path) -> None:
    err = load_error(tmp_path)
    assert_names(err, f"no pyproject.toml in {tmp_path}", "--project")
    assert err.observed == f"the directory {tmp_path} holds no pyproject.toml"


def test_missing_pyproject_named_relative_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 12: "no pyproject.toml at pyproject.toml (observed . (a directory))".
    monkeypatch.chdir(tmp_path)
    err = load_error(Path("."))
    assert str(err).startswith(f"no pyproject.toml in {tmp_path}")
    assert "(a directory)" not in str(err)
    err = load_error(Path("nowhere/pyproject.toml"))
    assert err.observed == f"{tmp_path / 'nowhere' / 'pyproject.toml'} does not exist"


def test_no_tool_staging_table(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, '[project]\nname = "x"\n'))
    assert_names(err, "[tool.staging]", "pyproject.toml", "[tool.staging.worker]")


def test_toml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, "[tool.staging]\ntimeout = sixty\n"))
    assert_names(err, "pyproject.toml", "line 2", "column", "timeout = sixty")


def test_unknown_key_suggests_the_nearest(tmp_path: Path) -> None:
    text = FULL.replace('image = "postgres:17"', 'imgae = "postgres:17"')
    err = load_error(write(tmp_path, text))
    assert_names(err, "tool.staging.postgres.imgae", "pyproject.toml", "did you mean 'image'")


def test_unknown_top_level_key(tmp_path: Path) -> None:
    err = load_error(
        write(tmp_path, FULL.replace("[[tool.staging.pipelines]]", "[[tool.staging.pipeline]]"))
    )
    assert_names(err, "tool.staging.pipeline", "did you mean 'pipelines'")


def test_wrong_type_names_the_indexed_key(tmp_path: Path) -> None:
    text = FULL.replace(
        'command = ["python", "scripts/run.py"]', 'command = ["python"]\ntimeout = "soon"'
    )
    err = load_error(write(tmp_path, text))
    assert_names(
        err, "tool.staging.pipelines[0].timeout", "'soon'", "valid number", "pyproject.toml"
    )


def test_wrong_type_from_env_names_the_variable(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, FULL), environ={"STAGING_TIMEOUT": "soon"})
    assert_names(err, "tool.staging.timeout", "env:STAGING_TIMEOUT", "'soon'")


def test_unknown_section_override_is_an_error(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, FULL), environ={"STAGING_POSTGRES_IMAGES": "x"})
    assert_names(err, "STAGING_POSTGRES_IMAGES", "did you mean STAGING_POSTGRES_IMAGE")


def test_missing_worker_table(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, FULL.replace(WORKER, "")))
    assert_names(err, "tool.staging.worker", "pyproject.toml", "task_queue", "command")


def test_missing_worker_command(tmp_path: Path) -> None:
    text = FULL.replace('command = ["python", "-m", "app.worker"]\n', "")
    err = load_error(write(tmp_path, text))
    assert_names(err, "tool.staging.worker.command", "missing", "pyproject.toml")


@pytest.mark.parametrize(
    ("trigger", "observed"),
    [('command = ["x"]\nworkflow = "Daily"', "command and workflow"), ("", "neither")],
)
def test_pipeline_needs_exactly_one_trigger(tmp_path: Path, trigger: str, observed: str) -> None:
    text = FULL.replace('command = ["python", "scripts/run.py"]', trigger)
    err = load_error(write(tmp_path, text))
    assert_names(err, "tool.staging.pipelines[0]", "exactly one of command or workflow", observed)


def test_several_problems_are_listed_together(tmp_path: Path) -> None:
    text = FULL.replace("timeout = 120", 'timeout = -1\nbackend = "dock"')
    err = load_error(write(tmp_path, text))
    assert_names(err, "2 problems", "tool.staging.timeout", "tool.staging.backend", "'auto'")


def test_class_alias_validation(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, FULL.replace('"app.settings:Settings"', '"app.settings"')))
    assert_names(err, "tool.staging.settings.class", "package.module:ClassName")


def test_secret_like_values_are_not_echoed(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, FULL.replace('"{postgres.password}"', "12345")))
    assert_names(err, "tool.staging.env.DB_PASSWORD")
    assert "12345" not in str(err)


def test_app_dir_that_does_not_exist(tmp_path: Path) -> None:
    text = FULL.replace("timeout = 120", 'timeout = 120\napp_dir = "nope"')
    err = load_error(write(tmp_path, text))
    assert_names(err, "tool.staging.app_dir", "pyproject.toml", "'nope'", "missing")


def test_interpreter_not_found(tmp_path: Path) -> None:
    text = FULL.replace("timeout = 120", 'timeout = 120\npython = ".venv/bin/python"')
    err = load_error(write(tmp_path, text))
    assert_names(err, "tool.staging.python", "pyproject.toml", ".venv/bin/python", "venv")
    err = load_error(tmp_path, environ={"STAGING_PYTHON": "no-such-python-xyz", "PATH": os.defpath})
    assert_names(err, "tool.staging.python", "env:STAGING_PYTHON", "no-such-python-xyz")


def test_unknown_placeholder_is_a_config_error(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, FULL.replace("{postgres.password}", "{postgres.pasword}")))
    assert_names(
        err,
        "tool.staging.env.DB_PASSWORD",
        "{postgres.pasword}",
        "did you mean {postgres.password}",
    )
    assert "pyproject.toml" in str(err)


# --- confinement: every path the config names stays inside the project ---


def _repo(tmp_path: Path) -> Path:
    """A git work tree (a `.git` dir is what marks it) with the app in services/worker."""
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "shared").mkdir()
    app = tmp_path / "repo" / "services" / "worker"
    app.mkdir(parents=True)
    return app


def _with(key_line: str, section: str = "[tool.staging]") -> str:
    return FULL.replace(section, f"{section}\n{key_line}", 1)


def test_app_dir_above_the_project_is_refused(tmp_path: Path) -> None:
    # `app_dir = "../../.."` once copied and hashed 36,607 files above the project.
    project = tmp_path / "a" / "b"
    project.mkdir(parents=True)
    err = load_error(write(project, _with('app_dir = "../../.."')))
    assert_names(
        err, "tool.staging.app_dir", str(project / "pyproject.toml"), "outside the project"
    )
    assert err.expected is not None and str(project) in err.expected
    assert err.observed == f"'../../..' -> {tmp_path.parent}"


def test_app_dir_may_leave_the_pyproject_dir_but_not_the_git_work_tree(tmp_path: Path) -> None:
    app = _repo(tmp_path)
    loaded = load_config(write(app, _with('app_dir = "../../shared"')), environ={})
    assert loaded.app_dir == (tmp_path / "repo" / "shared").resolve()

    err = load_error(write(app, _with('app_dir = "../../.."')))
    assert err.expected is not None and f"the git work tree {tmp_path / 'repo'}" in err.expected


def test_app_dir_through_a_symlink_out_of_the_project_is_refused(tmp_path: Path) -> None:
    project, outside = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    outside.mkdir()
    (project / "app").symlink_to(outside)
    err = load_error(write(project, _with('app_dir = "app"')))
    assert err.observed == f"'app' -> {outside}"


def test_app_dir_from_the_environment_names_its_origin(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, FULL), environ={"STAGING_APP_DIR": "/"})
    assert_names(err, "tool.staging.app_dir (from env:STAGING_APP_DIR)", "outside the project")


@pytest.mark.parametrize("path", ["../.env", "/run/secrets", "config/../../x.env", "~/.env"])
def test_settings_path_outside_the_app_is_refused(tmp_path: Path, path: str) -> None:
    err = load_error(write(tmp_path, _with(f'path = "{path}"', "[tool.staging.settings]")))
    assert_names(err, "tool.staging.settings.path", "outside the project", str(tmp_path))


def test_settings_path_inside_the_app_is_kept_even_when_the_source_is_a_symlink(
    tmp_path: Path,
) -> None:
    (tmp_path / "private.env").write_text("X=1\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / ".env").symlink_to(tmp_path / "private.env")
    # Staging writes settings into its copy of the app, where the developer's link is not.
    text = _with('app_dir = "app"').replace(
        "[tool.staging.settings]", '[tool.staging.settings]\npath = "config/../.env"'
    )
    loaded = load_config(write(tmp_path, text), environ={})
    assert loaded.config.settings.path == "config/../.env"


@pytest.mark.parametrize(
    "pattern", ["../../../*.json", "/etc/*.json", "tests/*/../x/*.json", "h/**/../../../*"]
)
def test_replay_globs_outside_the_project_are_refused(tmp_path: Path, pattern: str) -> None:
    app = _repo(tmp_path)
    text = FULL + f'\n[tool.staging.replay]\nhistories = ["tests/*.json", "{pattern}"]\n'
    err = load_error(write(app, text))
    assert_names(err, "tool.staging.replay.histories[1]", "outside the project")
    assert err.observed is not None and err.observed.startswith(repr(pattern))


def test_replay_globs_inside_the_work_tree_are_kept(tmp_path: Path) -> None:
    app = _repo(tmp_path)
    patterns = ["tests/histories/*.json", "../../shared/**/*.json", f"{app}/h/*.json"]
    text = FULL + f"\n[tool.staging.replay]\nhistories = {patterns!r}\n".replace("'", '"')
    assert load_config(write(app, text), environ={}).config.replay.histories == patterns


def test_the_gate_refuses_an_app_dir_outside_the_project_too(tmp_path: Path) -> None:
    from staging.gate.store import gate_target

    project = tmp_path / "a" / "b"
    project.mkdir(parents=True)
    write(project, _with('app_dir = "../.."'))
    with pytest.raises(ConfigError) as info:
        gate_target(project, environ={})
    assert_names(info.value, "tool.staging.app_dir", "outside the project", str(project))


def test_ci_points_an_attached_config_at_its_cluster_through_the_environment(
    tmp_path: Path,
) -> None:
    """[tool.staging.attach] keys are overridable like every section's (not the secrets:
    those are named variables already)."""
    project = write(
        tmp_path,
        FULL + '\n[tool.staging.attach]\ntemporal_address = "file:7233"\nnamespace = "staging"\n'
        'postgres_admin_url_env = "PG_ADMIN"\n',
    )
    environ = {
        "STAGING_BACKEND": "attach",
        "STAGING_ATTACH_TEMPORAL_ADDRESS": "temporal.ci.internal:7233",
        "STAGING_ATTACH_TLS": "true",
    }
    loaded = load_config(project, environ=environ)
    assert loaded.config.attach is not None
    assert loaded.config.attach.temporal_address == "temporal.ci.internal:7233"
    assert loaded.config.attach.tls is True
    assert loaded.config.attach.namespace == "staging"
    assert loaded.sources["attach.temporal_address"] == ("env:STAGING_ATTACH_TEMPORAL_ADDRESS")
    assert "STAGING_ATTACH_NAMESPACE_PREFIX" in env_override_names()
