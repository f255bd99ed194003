"""Checking an env for real before Ray starts: every mismatch is one line and exit 2, and Ray
never started; `rlsweep check` prints what it found."""

import json
import subprocess
import sys
import textwrap

import pytest

from rlsweep.cli import main
from rlsweep.experiment.files import list_experiments

BASE = "name: bad\nstop: {timesteps_total: 1000}\n"

FAILURES = {
    "box2d missing": (
        BASE + "env: LunarLander-v3\n",
        "env 'LunarLander-v3' needs Box2D, which is not installed: pip install \"rlsweep[box2d]\"",
    ),
    "mujoco missing": (
        BASE + "algorithm: SAC\nenv: HalfCheetah-v5\n",
        "env 'HalfCheetah-v5' needs mujoco, which is not installed: pip install \"rlsweep[mujoco]\"",
    ),
    "ale-py missing": (
        BASE + "env: ALE/Pong-v5\n",
        "env 'ALE/Pong-v5' needs ale-py, which is not installed: pip install \"rlsweep[atari]\"",
    ),
    "SAC on Discrete actions": (
        BASE + "algorithm: SAC\nenv: CartPole-v1\n",
        "env 'CartPole-v1' has action space Discrete(2), which SAC cannot act in (SAC needs Box actions); "
        "use PPO or DQN",
    ),
    "DQN on Box actions": (
        BASE + "algorithm: DQN\nenv: Pendulum-v1\n",
        "which DQN cannot act in (DQN needs Discrete actions); use PPO or SAC",
    ),
    "SAC on unbounded Box actions": (
        BASE + "algorithm: SAC\nenv: custom_envs:UnboundedActions\n",
        "which SAC cannot act in (SAC squashes actions into the action space's bounds, which must be "
        "finite); use PPO",
    ),
    "Sequence observations": (
        BASE + "env: custom_envs:SequenceObservations\n",
        "env 'custom_envs:SequenceObservations': observation space Sequence(Discrete(64), stack=False) "
        "holds Sequence observations, which no rlsweep encoder can take",
    ),
    "vector rewards": (
        BASE + "env: custom_envs:VectorRewards\n",
        "a reward must be one number (wrap a multi-objective env to weigh its rewards into one",
    ),
    "DQN on MultiDiscrete actions": (
        BASE + "algorithm: DQN\nenv: custom_envs:MultiDiscreteActions\n",
        "has action space MultiDiscrete([2 2]), which DQN cannot act in (DQN needs Discrete actions); "
        "use PPO",
    ),
    "Text actions": (
        BASE + "env: custom_envs:TextActions\n",
        "has action space Text(1, 4, charset=",
    ),
    "reset raises": (
        BASE + "env: custom_envs:RaisesInReset\n",
        "env 'custom_envs:RaisesInReset' raised ValueError in reset(): no map loaded",
    ),
    "step raises": (
        BASE + "env: faulty_envs:RaisingCartPole-v0\n",
        "env 'faulty_envs:RaisingCartPole-v0' raised RuntimeError in step(): simulated physics crash",
    ),
    "gym < 0.26 step API": (
        BASE + "env: custom_envs:OldGymStep\n",
        "env 'custom_envs:OldGymStep': step() returned 4 values, not (observation, reward, terminated, "
        "truncated, info)",
    ),
    "NaN observations": (
        BASE + "env: custom_envs:NaNReset\n",
        "env 'custom_envs:NaNReset': reset() returned non-finite observations (NaN or inf)",
    ),
    "observations of the wrong shape": (
        BASE + "env: custom_envs:WrongShape\n",
        "reset() returned an observation of shape (3,), but its observation space",
    ),
    "a factory that returns no env": (
        BASE + "env: custom_envs:make_not_an_env\n",
        "env 'custom_envs:make_not_an_env' built a builtins.str, not a gymnasium.Env",
    ),
    "an env_config key the env rejects": (
        BASE + "env: CartPole-v1\nconfig: {env_config: {sutton_barto_rewards: true}}\n",
        "env 'CartPole-v1' takes no env_config key 'sutton_barto_rewards' (did you mean "
        "'sutton_barto_reward'?)",
    ),
    "env_config for a factory without arguments": (
        BASE + "env: custom_envs:make_line_walk_without_arguments\nconfig: {env_config: {size: 3}}\n",
        "env 'custom_envs:make_line_walk_without_arguments' takes no env_config key 'size'; it takes: none",
    ),
    "a name the module does not have": (
        BASE + "env: custom_envs:NoSuchThing\n",
        "unknown env 'custom_envs:NoSuchThing': module 'custom_envs' has no class or function 'NoSuchThing' "
        "and registers no env id 'NoSuchThing'",
    ),
    "a stop target above any episode's return": (
        "name: bad\nenv: custom_envs:BoundedRewards-v0\nstop: {timesteps_total: 1000, target: 50}\n",
        "experiment key 'stop.target' is 50 for 'evaluation/episode_return_mean', but an episode of env "
        "'custom_envs:BoundedRewards-v0' returns at most 20 (with rewards in [0.0, 1.0] over at most 20 "
        "steps)",
    ),
    "a stop target above the time limit": (
        "name: bad\nmetric: episode_len_mean\nstop: {timesteps_total: 1000, target: 600}\n",
        "an episode of env 'CartPole-v1' lasts at most 500 (with a time limit of 500 steps)",
    ),
    "an evaluation metric with evaluation off": (
        BASE + "config: {evaluation_interval: 0}\n",
        "which trials never report with config.evaluation_interval: 0",
    ),
    "a replay buffer of images larger than memory": (
        BASE + "algorithm: DQN\nenv: custom_envs:ImageObservations\nsearch_space: fixed\n"
        "config: {buffer_size: 10000000}\n",
        "the replay buffer (1 x 10000000 transitions) needs at least 69.8 GiB",
    ),
    "a misspelt runtime_env field": (
        BASE + "runtime_env: {working_dri: .}\n",
        "unknown experiment key 'runtime_env.working_dri' (did you mean 'working_dir'?)",
    ),
    "a runtime_env working_dir that does not exist": (
        BASE + "runtime_env: {working_dir: no_such_folder}\n",
        "experiment key 'runtime_env.working_dir': folder",
    ),
}

COMMANDS = {
    "rlsweep train": (["train", "--algo", "DQN", "--env", "Pendulum-v1"], "which DQN cannot act in"),
    "rlsweep check": (["check", "EXPERIMENT:SAC on Discrete actions"], "which SAC cannot act in"),
}

RUN_CASES = textwrap.dedent(
    """
    import contextlib, io, json, sys
    # Optional dependencies as a user without the extras has them: not importable.
    for module in ("Box2D", "mujoco", "ale_py"):
        sys.modules[module] = None
    import ray
    from rlsweep.cli import main

    cases = json.loads(sys.argv[1])
    results = {}
    for name, argv in cases.items():
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
        results[name] = {"code": code, "stderr": err.getvalue(), "ray_started": ray.is_initialized()}
    print(json.dumps(results))
    """
)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every failing case run by the CLI in one fresh process, as a user would run them."""
    folder = tmp_path_factory.mktemp("failures")
    experiment_files = {}
    cases = {}
    for index, (name, (text, _)) in enumerate(FAILURES.items()):
        path = folder / f"case{index}.yaml"
        path.write_text(text)
        experiment_files[name] = str(path)
        cases[name] = ["sweep", str(path), "--results-dir", str(folder / "results"), "--no-mlflow"]
    for name, (argv, _) in COMMANDS.items():
        cases[name] = [
            experiment_files[arg.partition(":")[2]] if arg.startswith("EXPERIMENT:") else arg for arg in argv
        ]
    completed = subprocess.run(
        [sys.executable, "-c", RUN_CASES, json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=folder,
        check=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


EXPECTED = {name: message for name, (_, message) in {**FAILURES, **COMMANDS}.items()}


@pytest.mark.parametrize("case", list(EXPECTED))
def test_an_env_mismatch_is_one_line_and_exit_2_before_ray_starts(outcomes, case):
    outcome = outcomes[case]
    lines = outcome["stderr"].strip().splitlines()
    assert (outcome["code"], len(lines), outcome["ray_started"]) == (2, 1, False), outcome["stderr"]
    assert lines[0].startswith("rlsweep: error: ")
    assert EXPECTED[case] in lines[0]


def test_check_prints_the_env_its_spaces_the_algorithm_sampled_configs_and_checker_warnings(capsys):
    assert main(["check", "cartpole_ppo", "--set", "num_samples=4"]) == 0
    out = capsys.readouterr().out
    assert "Env:          CartPole-v1 (time limit 500 steps; gymnasium's reward_threshold 475)" in out
    assert "  actions:      Discrete(2)" in out
    assert "Algorithm:    PPO, search space 'ppo'" in out
    assert out.count(" lr=") == 3


def test_check_shows_no_env_checker_findings_for_gymnasiums_own_cartpole(capsys):
    assert main(["check", "cartpole_ppo"]) == 0
    out = capsys.readouterr().out
    assert "Env checker:  not run on gymnasium's own env" in out and "infinity" not in out


def test_check_shows_a_user_envs_checker_findings_in_full(capsys):
    assert main(["check", "cartpole_ppo", "--set", "env=custom_envs:UnboundedObservations"]) == 0
    assert "  - A Box observation space maximum value is infinity. This is probably too high." in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize("name", list_experiments())
def test_every_shipped_experiment_passes_rlsweep_check(name, tmp_path, monkeypatch):
    overrides = []
    if name in OFFLINE_EXPERIMENTS:  # `make datasets` records theirs; a tiny one in the same env here
        from rlsweep.trainables.offline.formats import write_npz
        from rlsweep.trainables.offline.record import record

        monkeypatch.setenv("RLSWEEP_DATASET_CACHE", str(tmp_path / "cache"))
        write_npz(record(OFFLINE_EXPERIMENTS[name], "random", steps=20), tmp_path / "tiny.npz")
        overrides = ["--set", f"config.dataset={tmp_path / 'tiny.npz'}"]
    assert main(["check", name, *overrides]) == 0


OFFLINE_EXPERIMENTS = {
    "cartpole_bc": "CartPole-v1", "cartpole_cql": "CartPole-v1", "pendulum_cql": "Pendulum-v1",
    "pendulum_iql": "Pendulum-v1", "pendulum_marwil": "Pendulum-v1",
}  # fmt: skip
"""The offline experiments and the env each one's dataset is recorded in."""


def _train_output(capsys, tmp_path, env: str) -> str:
    arguments = ["train", "--env", env, "--timesteps", "500", "--no-mlflow", "--results-dir", str(tmp_path)]
    assert main([*arguments, "--set", "evaluation_interval=0"]) == 0
    captured = capsys.readouterr()
    return captured.out + captured.err


def test_a_user_envs_checker_finding_prints_once_in_a_run(capsys, tmp_path, ray_session):
    output = _train_output(capsys, tmp_path, "custom_envs:UnboundedObservations")
    assert output.count("A Box observation space maximum value is infinity") == 1


def test_a_cartpole_run_prints_no_env_checker_findings(capsys, tmp_path, ray_session):
    output = _train_output(capsys, tmp_path, "CartPole-v1")
    assert "Env checker" not in output and "infinity" not in output
