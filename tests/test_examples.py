"""The custom-env example the README walks through, run as a new user would: from a folder of
their own, naming the experiment file by path; its env module arrives only through the
experiment's runtime_env."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom_env" / "grid_world_ppo.yaml"
RLSWEEP = str(Path(sys.executable).parent / "rlsweep")


def _rlsweep(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_ADDRESS")}
    env["RAY_AUTH_MODE"] = "disabled"
    return subprocess.run([RLSWEEP, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_custom_env_example_passes_rlsweep_check_from_another_folder(tmp_path):
    completed = _rlsweep("check", str(EXAMPLE), cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert "Env:          grid_world:GridWorld" in completed.stdout
    assert "  actions:      Discrete(4)" in completed.stdout


def test_the_custom_env_example_sweeps_from_another_folder(tmp_path):
    completed = _rlsweep(
        "sweep", str(EXAMPLE), "--num-samples", "2", "--set", "stop.timesteps_total=4096",
        "--no-mlflow", "--results-dir", "results", cwd=tmp_path,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    [sweep] = (tmp_path / "results" / "grid_world_ppo").iterdir()
    with open(sweep / "trials.csv") as rows:
        trials = list(csv.DictReader(rows))
    assert len(trials) == 2
    assert all(float(trial["timesteps_total"]) >= 4096 for trial in trials), trials
