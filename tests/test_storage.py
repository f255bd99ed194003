"""Runs kept in S3-compatible storage: a moto server on loopback, started and stopped here.
Tune's results and checkpoints, the run's own files and MLflow's artifacts land there; an
interrupted sweep resumes from there; `rlsweep best` and `rlsweep test` read a sweep there.

Every command runs in its own process, as a user runs it, so that its Ray's workers get the
endpoint from the environment."""

import os
import signal
import subprocess
import sys
import time

import boto3
import pytest
from moto.server import ThreadedMotoServer

STORAGE = "s3://sweeps/runs"

SWEEP = [
    "sweep", "cartpole_ppo",
    "--storage", STORAGE,
    "--num-samples", "3",
    "--max-concurrent", "1",
    "--set", "stop.timesteps_total=4000",
    "--set", "scheduler={type: fifo}",
    "--set", "test=null",
    "--set", "config.evaluation_interval=2",
    "--set", "config.evaluation_num_episodes=2",
]  # fmt: skip


@pytest.fixture
def s3(monkeypatch):
    """An S3 server on 127.0.0.1 with one bucket, and the AWS variables that point at it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name, value in {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "RAY_AUTH_MODE": "disabled",
        "PYTHONUNBUFFERED": "1",
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3")
    client.create_bucket(Bucket="sweeps")
    yield client
    server.stop()


def _keys(client) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket="sweeps")
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _rlsweep(*arguments: str, cwd) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "rlsweep", *arguments]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=400, env=os.environ)


def _interrupt_after_first_trial(cwd) -> str:
    process = subprocess.Popen(
        [sys.executable, "-m", "rlsweep", *SWEEP],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ,
    )
    output, deadline = [], time.monotonic() + 300
    for line in process.stdout:
        output.append(line)
        if " finished at " in line:
            process.send_signal(signal.SIGINT)
            break
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("no trial finished within 300 s:\n" + "".join(output))
    output.append(process.communicate(timeout=120)[0])
    assert process.returncode == 130, "".join(output)
    return "".join(output)


def test_a_sweep_stored_in_s3_resumes_and_is_read_back_by_best_and_test(s3, tmp_path):
    _interrupt_after_first_trial(tmp_path)
    keys = _keys(s3)
    assert any(key.endswith("/experiment.yaml") for key in keys)
    assert any(key.startswith("runs/cartpole_ppo/") and "/checkpoint_" in key for key in keys)
    assert any(key.startswith("runs/mlartifacts/") for key in keys), "MLflow's artifacts"

    resumed = _rlsweep(*SWEEP, "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    progress = {key.split("/")[3] for key in _keys(s3) if key.endswith("/progress.csv")}
    assert len(progress) == 3, progress
    assert any(key.endswith("/trials.csv") for key in _keys(s3))

    best = _rlsweep("best", f"{STORAGE}/cartpole_ppo", cwd=tmp_path)
    assert best.returncode == 0, best.stderr[-2000:]
    assert "Best config of" in best.stdout

    tested = _rlsweep("test", f"{STORAGE}/cartpole_ppo", "--top", "1", "--seeds", "1", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout[-2000:] + tested.stderr[-2000:]
    assert any("/test/" in key and key.endswith("/progress.csv") for key in _keys(s3))
