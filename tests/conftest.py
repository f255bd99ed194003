"""Shared fixtures: one local Ray instance for the whole test session."""

from __future__ import annotations

import os
import socket
import time

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
# Ray's worker processes inherit this, so trainables and envs defined in test modules import there.
_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [_TESTS_DIR, os.environ.get("PYTHONPATH")]))

import pytest  # noqa: E402
import ray  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


def _start_ray() -> None:
    ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False)


@pytest.fixture(scope="session")
def ray_session():
    """A 2-CPU local Ray started once: `ray.init` costs 10-25 s on this machine."""
    _start_ray()
    yield
    ray.shutdown()


@pytest.fixture(autouse=True)
def _whole_ray_cluster_free(request):
    """Every Ray test starts with both CPUs free. Ray releases a finished trial's resources
    asynchronously, and on rare occasions (seen once in a full run) a CPU stayed held with
    no actor left; a test needing both CPUs would then wait for ever, so restart Ray instead."""
    if "ray_session" in request.fixturenames and ray.is_initialized():
        deadline = time.monotonic() + 20
        while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.25)
        if ray.available_resources().get("CPU", 0) < 2:
            ray.shutdown()
            _start_ray()
    yield


TINY_SWEEP = [
    "--num-samples", "4",
    "--max-concurrent", "2",
    "--set", "stop.timesteps_total=3000",
    "--set", "scheduler.grace_period=1500",
    "--set", "scheduler.max_t=3000",
    "--set", "config.evaluation_interval=2",
    "--set", "config.evaluation_num_episodes=2",
    "--set", "test.top=2",
    "--set", "test.seeds=2",
]  # fmt: skip
"""CLI arguments for a 4-trial cartpole_ppo sweep of a few seconds, its top 2 configs then
tested on 2 held-out seeds each."""


@pytest.fixture(scope="session")
def finished_sweep(tmp_path_factory, ray_session):
    """The sweep folder of one real tiny sweep through the CLI, with MLflow in SQLite."""
    from rlsweep.cli import main

    results = tmp_path_factory.mktemp("results")
    assert main(["sweep", "cartpole_ppo", *TINY_SWEEP, "--results-dir", str(results)]) == 0
    (sweep_dir,) = (results / "cartpole_ppo").iterdir()
    return sweep_dir


def free_port() -> int:
    """A TCP port free on this machine now, for a server a test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
