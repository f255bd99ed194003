"""Faults injected for real: dead workers, failing envs, crashed trials, diverged learners."""

from pathlib import Path

import optuna
import pytest
import ray
from mlflow import MlflowClient
from ray import tune

from rlsweep import search_spaces
from rlsweep.cli import main
from rlsweep.search_spaces.search_space import search_space
from rlsweep.trainables import PPO

pytestmark = pytest.mark.usefixtures("ray_session")

QUICK = {
    "num_envs_per_worker": 4,
    "rollout_length": 32,
    "minibatch_size": 64,
    "evaluation_interval": 0,
}


def _run(trainable, config, tmp_path, iterations=4, **kwargs):
    analysis = tune.run(
        trainable,
        config=config,
        stop={"training_iteration": iterations},
        storage_path=str(tmp_path),
        verbose=0,
        raise_on_failed_trial=False,
        **kwargs,
    )
    return analysis.trials[0]


def _error_text(trial) -> str:
    return Path(trial.error_file).read_text()


class KillsItsWorkerPPO(PPO):
    """Kills its own rollout worker actor before its second iteration (asynchronous: while
    the worker samples the rollout that iteration will learn from)."""

    def step(self):
        if self.iteration == 1:
            ray.kill(self.workers.actors[0])
        return super().step()


@pytest.mark.parametrize("async_sampling", [True, False], ids=["async", "sync"])
def test_a_killed_worker_actor_is_replaced_and_the_trial_goes_on(tmp_path, async_sampling):
    config = {**QUICK, "num_workers": 1, "async_sampling": async_sampling}
    trial = _run(KillsItsWorkerPPO, config, tmp_path)
    assert trial.status == "TERMINATED"
    assert trial.last_result["training_iteration"] == 4
    assert trial.last_result["num_worker_restarts"] == 1


def test_an_env_that_always_raises_fails_the_trial_naming_env_and_exception(tmp_path):
    config = {**QUICK, "env": "faulty_envs:RaisingCartPole-v0", "num_workers": 1, "max_worker_restarts": 1}
    trial = _run(PPO, config, tmp_path)
    assert trial.status == "ERROR"
    expected = "env 'faulty_envs:RaisingCartPole-v0' raised RuntimeError in step(): simulated physics crash"
    assert expected in _error_text(trial)


def test_nan_observations_fail_the_trial_with_the_reason(tmp_path):
    config = {**QUICK, "env": "faulty_envs:NaNCartPole-v0", "max_worker_restarts": 0}
    trial = _run(PPO, config, tmp_path)
    assert trial.status == "ERROR"
    assert "returned non-finite observations" in _error_text(trial)


def test_a_diverged_learner_stops_its_trial_with_the_reason(tmp_path):
    trial = _run(PPO, {**QUICK, "env": "faulty_envs:ExplodingRewardCartPole-v0"}, tmp_path)
    assert trial.status == "ERROR"
    assert "training diverged at iteration 1" in _error_text(trial)


class CrashesOncePPO(PPO):
    """Its process dies at iteration 3, the first time only (a marker in the trial folder)."""

    def step(self):
        marker = Path(self.logdir) / "crashed_once"
        if self.iteration == 2 and not marker.exists():
            marker.write_text("")
            ray.kill(ray.get_runtime_context().current_actor)  # the trial's own process
        return super().step()


def test_a_crashed_trial_process_is_retried_from_its_last_checkpoint(tmp_path):
    trial = _run(
        CrashesOncePPO,
        QUICK,
        tmp_path,
        iterations=5,
        max_failures=1,
        checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=1),
    )
    assert trial.status == "TERMINATED"
    assert trial.num_failures == 1
    result = trial.last_result
    assert result["training_iteration"] == 5
    assert result["iterations_since_restore"] < 5  # continued from a checkpoint, not from scratch


@search_space
def sane_or_exploding_rewards(trial: optuna.Trial) -> dict:
    """Some trials get rewards that make the learner diverge."""
    reward = trial.suggest_categorical("reward", [1.0, 3e38])
    return {"env_config": {"reward": reward}, "lr": trial.suggest_float("lr", 1e-4, 1e-3, log=True)}


def test_a_diverged_trial_is_failed_in_tune_optuna_and_mlflow_and_the_sweep_goes_on(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(search_spaces.SEARCH_SPACES, "sane_or_exploding_rewards", sane_or_exploding_rewards)
    experiment = tmp_path / "mixed.yaml"
    experiment.write_text(
        "name: mixed\n"
        "env: faulty_envs:ExplodingRewardCartPole-v0\n"
        "search_space: sane_or_exploding_rewards\n"
        "config: {num_envs_per_worker: 4, rollout_length: 32, minibatch_size: 64, evaluation_interval: 1,"
        " evaluation_num_episodes: 2}\n"
        "sampler: random\n"
        "seed: 3\n"
        "num_samples: 4\n"
        "max_failures: 0\n"
        "stop: {training_iteration: 2}\n"
    )
    assert main(["sweep", str(experiment), "--results-dir", str(tmp_path)]) == 0
    (sweep_dir,) = (tmp_path / "mixed").iterdir()
    study = optuna.load_study(study_name="mixed", storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    states = {(t.params["reward"], t.state) for t in study.trials}
    assert states == {(1.0, optuna.trial.TrialState.COMPLETE), (3e38, optuna.trial.TrialState.FAIL)}
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("mixed").experiment_id])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    statuses = {(float(r.data.params["env_config.reward"]), r.info.status) for r in children}
    assert statuses == {(1.0, "FINISHED"), (3e38, "FAILED")}
    assert "failed" in capsys.readouterr().out


def test_a_space_that_raises_is_a_clear_error(tmp_path, capsys):
    experiment = tmp_path / "exp.yaml"
    experiment.write_text("name: bad\nstop: {timesteps_total: 1000}\nsearch_params: {num_minibatches: 0}\n")
    assert main(["sweep", str(experiment), "--results-dir", str(tmp_path)]) == 2
    assert "search space 'ppo' raised ZeroDivisionError" in capsys.readouterr().err


def test_an_unwritable_results_dir_fails_the_sweep_before_it_starts(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["sweep", "cartpole_ppo", "--results-dir", str(blocker)]) == 2
    assert "cannot create results folder" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["evaluate", "train --restore"])
def test_a_missing_or_foreign_checkpoint_is_a_clear_error(tmp_path, capsys, command):
    assert main([*command.split(), str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([*command.split(), str(tmp_path)]) == 2
    assert "is not an rlsweep checkpoint" in capsys.readouterr().err


def test_training_restored_from_a_checkpoint_continues_its_counters(tmp_path, capsys):
    assert (
        main(
            ["train", "--timesteps", "500", "--set", "evaluation_interval=0", "--results-dir", str(tmp_path)]
        )
        == 0
    )
    (checkpoint,) = sorted((tmp_path / "train").glob("PPO_*/*/checkpoint_*"))[-1:]
    args = [
        "train",
        "--restore",
        str(checkpoint),
        "--timesteps",
        "1500",
        "--results-dir",
        str(tmp_path),
        "--no-mlflow",
    ]
    assert main(args) == 0
    assert "Trained PPO on CartPole-v1" in capsys.readouterr().out
