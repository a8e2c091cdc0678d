"""The pipeline on a two-node Ray cluster on this machine, and the ports a local cluster listens on.

Each node is a `ray start` process tree with its own temp folder and ports. Teardown ends
those processes by their temp folder. It never runs `ray stop`, because that ends every Ray
process on the machine.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline.config import load_config
from test_cluster_support import (
    REPO,
    SMALL_INPUTS,
    WARC,
    assert_same_outputs,
    kill_processes,
    make_ray_tmpdir,
    pipeline_env,
    processes_of,
    run_command,
)

RAY = str(Path(sys.executable).parent / "ray")
RUN_TIMEOUT_S = 600


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def node_ports() -> list[str]:
    """Ports of one node's agents, chosen free, so two nodes (and other users' clusters) never collide."""
    return [f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}", f"--metrics-export-port={free_port()}"]


def ray_start(arguments: list[str], temp_dir: Path, env: dict[str, str]) -> None:
    # NOTE: Ray 2.60 replaces a loopback --node-ip-address with the host's routable address,
    # so both nodes advertise that address; 127.0.0.1 here only reaches the head.
    command = [RAY, "start", "--node-ip-address=127.0.0.1", "--num-cpus=1", f"--temp-dir={temp_dir}",
               "--disable-usage-stats", *node_ports(), *arguments]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"


@pytest.fixture
def two_node_cluster():
    """Start a head and a second node, one CPU each; yield the head's address and the cluster's environment."""
    root = make_ray_tmpdir()
    # A token of this cluster's own, so the test neither reads nor writes ~/.ray/auth_token.
    env = pipeline_env(root, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    address = f"127.0.0.1:{free_port()}"
    try:
        ray_start(["--head", f"--port={address.split(':')[1]}", "--include-dashboard=false"], root / "head", env)
        ray_start([f"--address={address}"], root / "node", env)
        yield address, env
    finally:
        kill_processes(processes_of(str(root)))


def test_two_nodes_share_process_phase(tmp_path, shared_data, two_node_cluster):
    address, env = two_node_cluster
    inputs = [str(WARC / name) for name in SMALL_INPUTS]
    out = tmp_path / "cluster-run"
    result = subprocess.run(run_command(inputs, out, "--address", address), cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    stats = json.loads((out / "stats.json").read_text())
    nodes = {info["worker"]["node_id"] for info in stats["files"].values()}
    assert len(nodes) == 2, f"every file ran on one node: {stats['files']}"

    local_tmpdir = make_ray_tmpdir()
    reference = tmp_path / "local-run"
    try:
        local = subprocess.run(run_command(inputs, reference, "--num-cpus", "2"), cwd=REPO,
                               env=pipeline_env(local_tmpdir), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    finally:
        kill_processes(processes_of(str(local_tmpdir)))
    assert local.returncode == 0, local.stderr[-3000:]
    assert_same_outputs(out, reference)


LISTEN_PROBE = textwrap.dedent("""
    import json, sys
    from pipeline.config import load_config
    from pipeline.engine import init_ray
    import ray
    from ray._raylet import AuthenticationMode, get_authentication_mode

    init_ray(load_config(), None, 1)
    ray.get(ray.remote(lambda: 1).remote())  # starts a worker process, which has a gRPC server too
    print(json.dumps({"token_auth": get_authentication_mode() == AuthenticationMode.TOKEN}), flush=True)
    sys.stdin.readline()
""")


def listening_sockets(pids: set[int]) -> list[tuple[str, str]]:
    """Return (local address, process name) of every listening TCP socket that `pids` own."""
    output = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    sockets = []
    for line in output.splitlines():
        owners = {int(pid) for pid in re.findall(r"pid=(\d+)", line)}
        if owners & pids:
            sockets.append((line.split()[3], re.search(r'\(\("([^"]+)"', line).group(1)))
    return sockets


def is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    return host.startswith("127.") or host == "::1"


@pytest.fixture(scope="module")
def local_cluster():
    """The token-auth flag and listening sockets of a local cluster that engine.init_ray starts
    in a subprocess, apart from this session's cluster."""
    ray_tmpdir = make_ray_tmpdir()
    probe = subprocess.Popen([sys.executable, "-c", LISTEN_PROBE], cwd=REPO, env=pipeline_env(ray_tmpdir),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = probe.stdout.readline()
        assert line, f"the local cluster did not start: {probe.stderr.read()[-3000:]}"
        yield json.loads(line), listening_sockets(processes_of(str(ray_tmpdir), roots=(probe.pid,)))
    finally:
        probe.kill()
        probe.wait()
        kill_processes(processes_of(str(ray_tmpdir)))


def test_local_cluster_listens(local_cluster):
    _, sockets = local_cluster
    names = {name for _, name in sockets}
    assert "gcs_server" in names
    assert "raylet" in names


def test_local_cluster_requires_token(local_cluster):
    if os.environ.get("RAY_AUTH_MODE", "token").lower() != "token":
        pytest.fail(f"RAY_AUTH_MODE={os.environ['RAY_AUTH_MODE']} turns off Ray's token authentication; unset it")
    probe, _ = local_cluster
    assert probe["token_auth"] is True


def test_default_config_keeps_dashboard_local():
    ray_config = load_config()["ray"]
    assert ray_config["include_dashboard"] is False
    assert ray_config["dashboard_host"] == "127.0.0.1"


@pytest.mark.xfail(strict=True, reason="Ray 2.60's GCS, raylet and worker gRPC servers listen on every interface, "
                                       "and its runtime-env agent on the host's address, whatever _node_ip_address "
                                       "says; token authentication guards those ports")
def test_local_cluster_binds_loopback_only(local_cluster):
    _, sockets = local_cluster
    exposed = [(address, name) for address, name in sockets if not is_loopback(address)]
    assert exposed == []
