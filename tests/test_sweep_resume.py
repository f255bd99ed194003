"""An interrupted sweep resumes with its finished trials kept and none counted twice."""

import os
import re
import signal
import subprocess
import sys
import time

import optuna
import pytest
from mlflow import MlflowClient

from rlsweep.cli import main

SWEEP = [
    "sweep", "cartpole_ppo",
    "--num-samples", "3",
    "--max-concurrent", "1",
    "--set", "stop.timesteps_total=15000",
    "--set", "scheduler={type: fifo}",
    "--set", "test=null",
    "--set", "config.evaluation_interval=2",
    "--set", "config.evaluation_num_episodes=2",
]  # fmt: skip


def _interrupt_after_first_trial(results_dir, signum: int) -> tuple[int, str]:
    """Run the sweep in its own process and send `signum` once one trial has finished."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "rlsweep", *SWEEP, "--results-dir", str(results_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    output = []
    deadline = time.monotonic() + 240
    for line in process.stdout:
        output.append(line)
        if " finished at " in line:
            process.send_signal(signum)
            break
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("no trial finished within 240 s:\n" + "".join(output))
    output.append(process.communicate(timeout=120)[0])
    return process.returncode, "".join(output)


def _mlflow_runs(results_dir):
    client = MlflowClient(f"sqlite:///{results_dir / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("cartpole_ppo").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("rlsweep.kind") == "sweep"]
    children = {r.data.tags["rlsweep.trial_id"]: r.info.status for r in runs if r is not parent}
    return parent.info.status, children


@pytest.mark.usefixtures("ray_session")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_sweep_resumes_keeping_finished_trials(tmp_path, signum):
    code, output = _interrupt_after_first_trial(tmp_path, signum)
    assert code == 130, output
    assert "--resume" in output
    (finished_id,) = re.findall(r"trial (\w+) finished at", output)
    (sweep_dir,) = (tmp_path / "cartpole_ppo").iterdir()
    progress = sweep_dir / f"PPO_{finished_id}" / "progress.csv"
    rows_before = progress.read_text().count("\n")
    study = optuna.load_study(study_name="cartpole_ppo", storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    assert optuna.trial.TrialState.COMPLETE in [t.state for t in study.trials]
    parent_status, children = _mlflow_runs(tmp_path)
    assert parent_status == "KILLED"
    assert children[finished_id] == "FINISHED"
    assert set(children.values()) <= {"FINISHED", "KILLED"}

    assert main([*SWEEP, "--results-dir", str(tmp_path), "--resume"]) == 0

    study = optuna.load_study(study_name="cartpole_ppo", storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 3
    assert progress.read_text().count("\n") == rows_before  # the finished trial did not run again
    parent_status, children = _mlflow_runs(tmp_path)
    assert parent_status == "FINISHED"
    assert list(children.values()) == ["FINISHED"] * 3  # one run per trial: none logged twice
