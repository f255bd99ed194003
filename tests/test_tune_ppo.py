"""PPO through Ray Tune, with rollout workers as Ray actors."""

import logging
import math

import pytest
import ray
import torch
from ray import tune

from rlsweep.trainables import PPO

pytestmark = pytest.mark.usefixtures("ray_session")

QUICK = {
    "env": "CartPole-v1",
    "num_envs_per_worker": 4,
    "rollout_length": 32,
    "minibatch_size": 64,
    "evaluation_interval": 1,
    "evaluation_num_episodes": 2,
}

REPORTED_METRICS = [
    "episode_return_mean", "episode_return_min", "episode_return_max", "episode_len_mean",
    "num_episodes", "timesteps_total", "env_steps_per_s", "sample_time_s", "learn_time_s",
    "policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction",
    "evaluation/episode_return_mean",
]  # fmt: skip


def _run(trainable, config, stop, tmp_path, **kwargs):
    return tune.run(trainable, config=config, stop=stop, storage_path=str(tmp_path), verbose=0, **kwargs)


def test_tune_run_with_a_worker_actor_reports_every_metric(tmp_path):
    analysis = _run(PPO, {**QUICK, "num_workers": 1}, {"training_iteration": 2}, tmp_path)
    result = analysis.trials[0].last_result
    missing = [key for key in REPORTED_METRICS if key not in result]
    assert not missing
    assert result["timesteps_total"] > 0


class PlacementProbePPO(PPO):
    """Reports where its worker actors run, next to the trial's own placement group."""

    def step(self):
        result = super().step()
        result["trial_pg"] = ray.util.get_current_placement_group().id.hex()
        result["worker_pgs"] = ",".join(
            ray.get(actor.__ray_call__.remote(lambda _: ray.get_runtime_context().get_placement_group_id()))
            for actor in self.workers.actors
        )
        return result


def test_worker_actors_live_in_the_trial_placement_group(tmp_path):
    analysis = _run(PlacementProbePPO, {**QUICK, "num_workers": 1}, {"training_iteration": 1}, tmp_path)
    result = analysis.trials[0].last_result
    assert result["worker_pgs"] == result["trial_pg"]


def test_resource_request_reserves_learner_and_one_bundle_per_worker():
    factory = PPO.default_resource_request({"num_workers": 3, "num_gpus": 0.5})
    assert factory.bundles == [{"CPU": 1, "GPU": 0.5}, {"CPU": 1}, {"CPU": 1}, {"CPU": 1}]


@pytest.mark.parametrize("num_workers", [0, 1], ids=["in_process", "async_worker"])
def test_ppo_learns_cartpole_within_a_fixed_budget(tmp_path, num_workers):
    config = {
        "num_workers": num_workers,
        "env": "CartPole-v1",
        "num_envs_per_worker": 16,
        "rollout_length": 64,
        "minibatch_size": 256,
        "lr": 1e-3,
        "evaluation_interval": 0,
        "seed": 1,
    }
    analysis = _run(PPO, config, {"timesteps_total": 60_000}, tmp_path)
    assert analysis.trials[0].last_result["episode_return_mean"] > 150


def test_box_action_env_trains_with_actions_in_bounds(tmp_path):
    config = {**QUICK, "env": "Pendulum-v1", "normalize_obs": True, "num_workers": 1}
    analysis = _run(PPO, config, {"training_iteration": 2}, tmp_path)
    result = analysis.trials[0].last_result
    assert result["evaluation/episode_return_mean"] <= 0
    assert math.isfinite(result["value_loss"])


def test_tuner_runs_a_grid_over_ppo(tmp_path):
    tuner = tune.Tuner(
        PPO,
        param_space={**QUICK, "lr": tune.grid_search([1e-3, 3e-4])},
        tune_config=tune.TuneConfig(metric="episode_return_mean", mode="max"),
        run_config=tune.RunConfig(stop={"training_iteration": 1}, storage_path=str(tmp_path), verbose=0),
    )
    results = tuner.fit()
    assert len(results) == 2
    assert not results.errors


def test_gpu_request_uses_cuda_or_falls_back_to_cpu_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        algo = PPO(config={**QUICK, "num_gpus": 1, "evaluation_interval": 0})
    result = algo.train()
    algo.stop()
    assert result["timesteps_total"] > 0
    if torch.cuda.is_available():
        assert algo.device.type == "cuda"
    else:
        assert algo.device.type == "cpu"
        assert "CUDA is not available" in caplog.text
