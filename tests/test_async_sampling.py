"""Asynchronous sampling: workers sample the next rollout while the learner updates, one
policy version behind at most, and every env step reaches the learner exactly once."""

import itertools

import numpy as np
import pytest
import ray
import torch

from rlsweep.trainables import DQN, PPO

pytestmark = pytest.mark.usefixtures("ray_session")

PPO_QUICK = {
    "env": "CartPole-v1",
    "num_envs_per_worker": 4,
    "rollout_length": 32,
    "minibatch_size": 64,
    "num_epochs": 2,
    "evaluation_interval": 0,
}


class RecordingPPO(PPO):
    """Keeps every rollout it learns from, with its own policy version at that moment."""

    def setup(self, config):
        super().setup(config)
        self.learned: list[tuple[int, object]] = []

    def learn(self, rollouts):
        self.learned += [(self.policy_version, rollout) for rollout in rollouts]
        return super().learn(rollouts)


def _trained(algorithm, config, iterations):
    algo = algorithm(config=config)
    for _ in range(iterations):
        algo.train()
    return algo


@pytest.fixture(scope="module")
def two_async_workers():
    """A PPO trial with two asynchronous workers, after 10 iterations: every rollout it
    learned from, and the ones its workers were still sampling."""
    algo = _trained(RecordingPPO, {**PPO_QUICK, "num_workers": 2}, iterations=10)
    in_flight = ray.get(list(algo.workers.in_flight))
    algo.stop()
    return algo, in_flight


def test_every_rollout_is_at_most_one_policy_version_behind_the_learner(two_async_workers):
    algo, _ = two_async_workers
    lags = [version - rollout.policy_version for version, rollout in algo.learned]
    assert set(lags) <= {0, 1}
    assert 1 in lags  # the workers did sample while the learner updated


def test_every_env_step_a_worker_takes_is_learned_from_exactly_once(two_async_workers):
    algo, in_flight = two_async_workers
    assert sum(rollout.valid.size for _, rollout in algo.learned) == algo.timesteps_total
    for worker in (0, 1):
        sampled = [rollout for _, rollout in algo.learned if rollout.worker == worker]
        sampled += [rollout for rollout in in_flight if rollout.worker == worker]
        # Each rollout starts where the worker's previous one ended: none skipped or repeated.
        for previous, rollout in itertools.pairwise(sampled):
            assert np.array_equal(previous.obs["vector"][-1], rollout.obs["vector"][0])


class CountingDQN(DQN):
    def setup(self, config):
        super().setup(config)
        self.updates = 0

    def update(self, batch):
        self.updates += 1
        return super().update(batch)


def test_off_policy_keeps_its_gradient_steps_per_env_step_on_average():
    config = {
        "env": "CartPole-v1",
        "num_workers": 2,
        "num_envs_per_worker": 2,
        "hidden_sizes": [16],
        "train_freq": 4,
        "gradient_steps": 3,  # per 2 workers * 2 envs * 4 steps = 16 env steps
        "learning_starts": 0,
        "timesteps_per_iteration": 200,
        "evaluation_interval": 0,
    }
    algo = _trained(CountingDQN, config, iterations=2)
    updates, steps = algo.updates, algo.timesteps_total
    algo.stop()
    assert updates == pytest.approx(steps * 3 / 16, abs=1)


def test_synchronous_sampling_reproduces_the_same_weights_from_the_same_seed():
    config = {**PPO_QUICK, "num_workers": 2, "async_sampling": False, "seed": 3}
    runs = []
    for _ in range(2):
        algo = _trained(PPO, config, iterations=3)
        runs.append({k: v.clone() for k, v in algo.policy.network.state_dict().items()})
        algo.stop()
    for name, value in runs[0].items():
        assert torch.equal(value, runs[1][name]), name
