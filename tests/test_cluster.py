"""User code on a real two-node Ray cluster (two `ray start` nodes of one CPU each, on this
machine): an env module that only the runtime_env ships reaches every trial and rollout
worker, from `rlsweep sweep` and from a `tune.run` script whose envs live in its `__main__`.

Every trial needs two CPUs (learner + one worker actor), so each spans both nodes. The
drivers run from a folder that is on no PYTHONPATH, with the env module elsewhere; Ray hands
workers only the driver's script folder and working directory, so the module can only
arrive through the runtime_env. Each env copy records where its module was imported from
and on which node it ran.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster

RAY = str(Path(sys.executable).parent / "ray")
RLSWEEP = str(Path(sys.executable).parent / "rlsweep")

ENV_MODULE = textwrap.dedent(
    """
    import json, uuid
    from pathlib import Path

    import gymnasium as gym
    import numpy as np
    from ray.tune.registry import register_env


    class Walk(gym.Env):
        def __init__(self, config=None):
            config = config if config is not None else {}
            self.observation_space = gym.spaces.Box(-20.0, 20.0, (1,), np.float32)
            self.action_space = gym.spaces.Discrete(2)
            if config.get("probe_dir"):
                import ray

                record = {
                    "module_file": __file__,
                    "node_id": ray.get_runtime_context().get_node_id() if ray.is_initialized() else None,
                    "worker_index": getattr(config, "worker_index", None),
                }
                Path(config["probe_dir"], uuid.uuid4().hex + ".json").write_text(json.dumps(record))

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.position, self.steps = 0, 0
            return np.array([0.0], np.float32), {}

        def step(self, action):
            self.position += 1 if action == 1 else -1
            self.steps += 1
            done = self.position >= 5
            return np.array([self.position], np.float32), float(done), done, self.steps >= 20, {}


    def make_walk(config):
        return Walk(config)
    """
)

QUICK_CONFIG = {
    "num_workers": 1,
    "num_envs_per_worker": 2,
    "rollout_length": 16,
    "minibatch_size": 32,
    "evaluation_interval": 1,
    "evaluation_num_episodes": 2,
}

TUNE_SCRIPT = textwrap.dedent(
    """
    import json, sys

    import gymnasium as gym
    import ray
    from ray import tune
    from ray.tune.registry import register_env

    code_dir, address, probe_dir, storage, quick = sys.argv[1:6]
    sys.path.insert(0, code_dir)  # the driver's own import; Ray does not hand this path to workers
    import shipped_walk_env
    from rlsweep import PPO, load_policy


    class MainWalk(shipped_walk_env.Walk):
        \"\"\"Defined in __main__, so it travels to trials by value.\"\"\"


    # A gymnasium id's env_config are gymnasium.make's kwargs: this one gets its config here.
    gym.register("MainWalk-v0", entry_point=MainWalk, kwargs={"config": {"probe_dir": probe_dir}})
    register_env("main_walk", lambda config: MainWalk(config))
    shipped = {"py_modules": [code_dir + "/shipped_walk_env.py"]}
    ray.init(address=address, runtime_env=shipped, log_to_driver=False)
    forms = [MainWalk, lambda config: MainWalk(config), "MainWalk-v0", "main_walk"]
    env_config = lambda spec: {} if spec.config.env == "MainWalk-v0" else {"probe_dir": probe_dir}
    analysis = tune.run(
        PPO,
        config={
            **json.loads(quick), "env": tune.grid_search(forms), "env_config": tune.sample_from(env_config)
        },
        stop={"training_iteration": 1},
        storage_path=storage,
        checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True),
        reuse_actors=True,
        verbose=0,
        raise_on_failed_trial=False,
    )
    failed = [open(t.error_file).read()[-500:] for t in analysis.trials if t.status != "TERMINATED"]
    ray.shutdown()  # load_policy builds an env here, in the driver: it is no cluster record
    policy = load_policy(analysis.trials[0].checkpoint.path) if not failed else None
    print(json.dumps({"trials": len(analysis.trials), "failed": failed, "acts": policy is not None}))
    """
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _cluster_env() -> dict[str, str]:
    """This environment without the test suite's PYTHONPATH or Ray address."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_ADDRESS")}
    env["RAY_AUTH_MODE"] = "disabled"
    return env


def _processes_using(folder: str) -> list[int]:
    """Our cluster's processes: every Ray process names its temp folder on its command line."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if folder.encode() in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                pass
    return pids


def _stop(folder: str) -> None:
    """Stop only this cluster's processes, by PID (`ray stop` would stop every Ray here)."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 0.0)):
        for pid in _processes_using(folder):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while _processes_using(folder) and time.monotonic() < deadline:
            time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster():
    """A head node and a second node, one CPU each; yields the head's address."""
    # Short: Ray's socket paths live under it, and those have a length limit.
    folder = tempfile.mkdtemp(prefix="rlsc", dir="/tmp")
    port = _free_port()
    common = ["--num-cpus=1", "--num-gpus=0", "--object-store-memory=100000000", "--disable-usage-stats"]

    def node_ports() -> list[str]:
        # Two nodes on one machine must not both take Ray's default agent ports.
        names = ["node-manager", "object-manager", "dashboard-agent-listen", "dashboard-agent-grpc"]
        names += ["runtime-env-agent", "metrics-export"]
        return [f"--{name}-port={_free_port()}" for name in names]

    head = [RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}"]
    head += [
        "--include-dashboard=false",
        f"--ray-client-server-port={_free_port()}",
        f"--temp-dir={folder}/head",
    ]
    second = [RAY, "start", f"--address=127.0.0.1:{port}", f"--temp-dir={folder}/second"]
    try:
        for command in (head, second):
            command += [*common, *node_ports()]
            subprocess.run(command, env=_cluster_env(), check=True, capture_output=True)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(folder)


@pytest.fixture
def code_and_run_dirs(tmp_path):
    """The env module in one folder, an empty folder to run the drivers from."""
    code, run, probes = tmp_path / "code", tmp_path / "run", tmp_path / "probes"
    for folder in (code, run, probes):
        folder.mkdir()
    (code / "shipped_walk_env.py").write_text(ENV_MODULE)
    return code, run, probes


def _records_from_cluster(probes: Path) -> list[dict]:
    """What the env copies that ran on the cluster recorded (the driver's own check has no node)."""
    records = [json.loads(path.read_text()) for path in probes.glob("*.json")]
    return [record for record in records if record["node_id"] is not None]


def _assert_shipped_to_both_nodes(records: list[dict], code: Path) -> None:
    assert len({record["node_id"] for record in records}) == 2, "envs ran on both nodes"
    assert {record["worker_index"] for record in records} >= {0, 1}, "in trials and in worker actors"
    imported_from = {record["module_file"] for record in records}
    assert all("runtime_resources" in path and not path.startswith(str(code)) for path in imported_from)


def test_a_cli_sweep_on_two_nodes_imports_an_env_module_only_its_runtime_env_working_dir_ships(
    cluster, code_and_run_dirs, tmp_path
):
    code, run, probes = code_and_run_dirs
    config = {**QUICK_CONFIG, "env_config": {"probe_dir": str(probes)}}
    config.pop("num_workers")  # an experiment sets it under resources
    (run / "walk.yaml").write_text(
        "name: walk\nalgorithm: PPO\nenv: shipped_walk_env:Walk\nsearch_space: fixed\nnum_samples: 1\n"
        f"runtime_env: {{working_dir: ../code}}\nconfig: {json.dumps(config)}\n"
        "resources: {num_workers: 1}\nstop: {training_iteration: 1}\n"
    )
    completed = subprocess.run(
        [RLSWEEP, "sweep", "walk.yaml", "--address", cluster, "--no-mlflow",
         "--results-dir", str(tmp_path / "results")],
        cwd=run, env=_cluster_env(), capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    _assert_shipped_to_both_nodes(_records_from_cluster(probes), code)


def test_a_tune_run_script_on_two_nodes_trains_every_env_form_of_its_main_script_via_py_modules(
    cluster, code_and_run_dirs, tmp_path
):
    code, run, probes = code_and_run_dirs
    (run / "driver.py").write_text(TUNE_SCRIPT)
    completed = subprocess.run(
        [sys.executable, "driver.py", str(code), cluster, str(probes), str(tmp_path / "results"),
         json.dumps(QUICK_CONFIG)],
        cwd=run, env=_cluster_env(), capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    outcome = json.loads(completed.stdout.strip().splitlines()[-1])
    assert outcome == {"trials": 4, "failed": [], "acts": True}
    _assert_shipped_to_both_nodes(_records_from_cluster(probes), code)
