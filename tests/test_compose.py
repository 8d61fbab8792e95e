"""Static checks for the container setup: docker-compose.yml and Dockerfile.

The structural tests always run (PyYAML only). Validation through ``docker compose config`` runs only
where the docker CLI with the compose plugin is installed; no Docker engine is needed for it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PG_DATA_DIR = "/var/lib/postgresql/data"


def _compose_command() -> tuple[list[str] | None, str]:
    """The compose CLI to validate with: the ``docker compose`` plugin, else standalone ``docker-compose``."""
    reasons = []
    docker = shutil.which("docker")
    if docker is not None:
        try:
            proc = subprocess.run(
                [docker, "compose", "version"], capture_output=True, timeout=30, check=False
            )
            if proc.returncode == 0:
                return [docker, "compose"], ""
            reasons.append("docker compose plugin not installed")
        except (OSError, subprocess.TimeoutExpired) as exc:
            reasons.append(f"`docker compose version` could not run: {exc}")
    else:
        reasons.append("docker CLI not found")
    standalone = shutil.which("docker-compose")
    if standalone is not None:
        return [standalone], ""
    reasons.append("docker-compose not found (apt-get install -y docker-compose)")
    return None, "; ".join(reasons)


def _load_compose() -> dict[str, Any]:
    """Parse docker-compose.yml (PyYAML resolves the ``<<`` merge keys used for the x-app anchor)."""
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "docker-compose.yml must be a mapping"
    return data


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """Return a service's environment as a dict, whether written as a mapping or a KEY=VALUE list."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _volume_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """Return (source, target) pairs for a service's volumes, short or long syntax."""
    mounts: list[tuple[str, str]] = []
    for vol in service.get("volumes") or []:
        if isinstance(vol, str):
            parts = vol.split(":")
            if len(parts) >= 2:
                mounts.append((parts[0], parts[1]))
        elif isinstance(vol, dict):
            mounts.append((str(vol.get("source", "")), str(vol.get("target", ""))))
    return mounts


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) pairs, with comments dropped and continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    return instructions


@pytest.mark.parametrize(
    "profile_args",
    [[], ["--profile", "gpu"], ["--profile", "ray"]],
    ids=["default", "gpu-profile", "ray-profile"],
)
def test_docker_compose_config_is_valid(profile_args: list[str]) -> None:
    """``docker compose config --quiet`` accepts the file, with and without the gpu and ray profiles."""
    command, reason = _compose_command()
    if command is None:
        pytest.skip(f"cannot validate with docker compose: {reason}")
    proc = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), *profile_args, "config", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"docker compose config failed:\n{proc.stderr}"


def test_compose_structure() -> None:
    """The compose file wires app to a healthy Postgres with persistent storage and a GPU variant."""
    compose = _load_compose()
    services = compose.get("services") or {}
    for name in ("db", "app", "app-gpu"):
        assert name in services, f"service {name!r} missing"
    db, app, gpu = services["db"], services["app"], services["app-gpu"]

    # app waits for a healthy database
    depends = app.get("depends_on")
    assert isinstance(depends, dict) and "db" in depends, "app must depend on db (long syntax)"
    assert depends["db"].get("condition") == "service_healthy"

    # healthchecks on both
    for name, svc in (("db", db), ("app", app)):
        assert (svc.get("healthcheck") or {}).get("test"), f"{name} has no healthcheck"

    # postgres data on a named volume
    named_volumes = set((compose.get("volumes") or {}).keys())
    pg_sources = [src for src, target in _volume_mounts(db) if target.rstrip("/") == PG_DATA_DIR]
    assert pg_sources, f"nothing mounted at {PG_DATA_DIR} in db"
    assert any(src in named_volumes for src in pg_sources), "postgres data must use a top-level named volume"

    # psycopg (v3) SQLAlchemy URL
    url = _environment(app).get("BERTSCOPE_DATABASE_URL", "")
    assert url.startswith("postgresql+psycopg://"), f"unexpected BERTSCOPE_DATABASE_URL: {url!r}"

    # GPU service only under the gpu profile, reserving an nvidia device; the others are always on
    assert gpu.get("profiles") == ["gpu"], "app-gpu must be in the 'gpu' profile only"
    assert not app.get("profiles") and not db.get("profiles"), "db and app must not be profile-gated"
    reservations = ((gpu.get("deploy") or {}).get("resources") or {}).get("reservations") or {}
    devices = reservations.get("devices") or []
    assert any(
        dev.get("driver") == "nvidia" and "gpu" in (dev.get("capabilities") or []) for dev in devices
    ), "app-gpu must reserve an nvidia gpu device"
    assert _environment(gpu).get("BERTSCOPE_DEVICE") == "cuda"

    # app and app-gpu must not publish the same host port
    app_ports = {str(p).rsplit(":", 1)[0] for p in app.get("ports") or []}
    gpu_ports = {str(p).rsplit(":", 1)[0] for p in gpu.get("ports") or []}
    assert app_ports and gpu_ports and not (app_ports & gpu_ports), "app and app-gpu clash on host ports"


def test_dockerfile_basics() -> None:
    """The Dockerfile takes a selectable base image, has a HEALTHCHECK and drops root."""
    instructions = _dockerfile_instructions()
    assert instructions, "Dockerfile is empty"

    args = [a for kw, a in instructions if kw == "ARG"]
    assert any(a.split("=", 1)[0].strip() == "BASE_IMAGE" for a in args), "ARG BASE_IMAGE missing"
    froms = [a for kw, a in instructions if kw == "FROM"]
    assert any("$BASE_IMAGE" in a or "${BASE_IMAGE}" in a for a in froms), "FROM does not use BASE_IMAGE"

    healthchecks = [a for kw, a in instructions if kw == "HEALTHCHECK"]
    assert healthchecks and not healthchecks[-1].upper().startswith("NONE"), "HEALTHCHECK missing"

    users = [a.split(":", 1)[0].strip() for kw, a in instructions if kw == "USER"]
    assert users, "Dockerfile never sets USER"
    assert users[-1] not in {"root", "0"}, f"final USER is {users[-1]!r}, expected a non-root user"


def test_ray_profile_wires_the_app_to_a_cluster_of_the_same_image() -> None:
    """Profile ray: a head, CPU and GPU workers and an app pointed at the head's client port, one image."""
    services = _load_compose()["services"]
    ray_services = {name for name, service in services.items() if service.get("profiles") == ["ray"]}
    assert ray_services == {"ray-head", "ray-worker", "ray-worker-gpu", "app-ray"}
    head, worker, gpu_worker, app = (
        services[name] for name in ("ray-head", "ray-worker", "ray-worker-gpu", "app-ray")
    )
    assert "--head" in head["command"] and "--ray-client-server-port=10001" in head["command"]
    for node in (worker, gpu_worker):
        assert "--address=ray-head:6379" in node["command"] and node.get("shm_size")
        assert node["depends_on"]["ray-head"]["condition"] == "service_healthy"
    assert "--num-gpus=1" in gpu_worker["command"] and gpu_worker["image"] == "bertscope:gpu"
    assert worker["image"] == head["image"] == app["image"] == services["app"]["image"]
    assert _environment(app)["BERTSCOPE_RAY_ADDRESS"] == "ray://ray-head:10001"
    assert app["depends_on"]["ray-head"]["condition"] == "service_healthy"
    install = [args for keyword, args in _dockerfile_instructions() if keyword == "RUN" and "/src[" in args]
    assert install and "${EXTRAS}" in install[0]
    assert ("ARG", "EXTRAS=ray") in _dockerfile_instructions()
