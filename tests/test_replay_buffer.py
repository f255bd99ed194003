import numpy as np
import pytest

from rlsweep.trainables.learning.replay_buffer import ReplayBuffer, Transitions
from rlsweep.trainables.sampling.rollout import Rollout

GAMMA = 0.5


def _rollout(first_obs, rewards, terminated=None, truncated=None, valid=None, num_seeds=1) -> Rollout:
    """One env per seed; observation t is the number first_obs + t (plus 1000 * seed), so
    next_obs says how far a window went and whose it is."""
    steps = len(rewards)
    column = lambda values, dtype: np.repeat(  # noqa: E731
        np.asarray(values, dtype=dtype).reshape(steps, 1, 1), num_seeds, axis=1
    )
    no = [False] * steps
    obs = np.arange(first_obs, first_obs + steps + 1, dtype=np.float32).reshape(steps + 1, 1, 1, 1)
    return Rollout(
        obs={"vector": obs + 1000 * np.arange(num_seeds, dtype=np.float32).reshape(1, num_seeds, 1, 1)},
        actions=column(np.arange(steps), np.int64),
        rewards=column(rewards, np.float32),
        terminated=column(terminated or no, bool),
        truncated=column(truncated or no, bool),
        valid=column(valid or [True] * steps, bool),
        extras={},
        episode_returns=np.empty(0),
        episode_lengths=np.empty(0, dtype=np.int64),
        episode_seeds=np.empty(0, dtype=np.int64),
        sample_time_s=0.0,
    )


def _buffer(n_step=1, capacity=100, num_seeds=1) -> ReplayBuffer:
    return ReplayBuffer(capacity, seeds=list(range(num_seeds)), n_step=n_step)


def _stored(buffer: ReplayBuffer, seed_index: int = 0) -> dict[str, np.ndarray]:
    """A seed's transitions, oldest first, observations as plain arrays."""
    transitions = buffer.state_dict(include_transitions=True)["transitions"][seed_index]
    return {
        "obs": transitions.obs["vector"],
        "next_obs": transitions.next_obs["vector"],
        "rewards": transitions.rewards,
        "terminated": transitions.terminated,
        "discounts": transitions.discounts,
    }


def test_one_step_transitions_pair_each_valid_step_with_its_true_next_observation():
    buffer = _buffer()
    # Step 1 ends an episode; step 2 is the autoreset step, which is not a transition.
    buffer.add_rollout(_rollout(0, [1, 2, 0, 3], truncated=[0, 1, 0, 0], valid=[1, 1, 0, 1]), 0, GAMMA)
    stored = _stored(buffer)
    np.testing.assert_array_equal(stored["obs"][:, 0], [0, 1, 3])
    np.testing.assert_array_equal(stored["next_obs"][:, 0], [1, 2, 4])
    np.testing.assert_array_equal(stored["discounts"], [GAMMA] * 3)


def test_n_step_return_sums_discounted_rewards_then_bootstraps_n_steps_later():
    buffer = _buffer(n_step=3)
    buffer.add_rollout(_rollout(0, [1, 2, 4, 8]), 0, GAMMA)
    stored = _stored(buffer)
    assert stored["rewards"] == pytest.approx([1 + 0.5 * 2 + 0.25 * 4, 2 + 0.5 * 4 + 0.25 * 8])
    np.testing.assert_array_equal(stored["next_obs"][:, 0], [3, 4])
    assert stored["discounts"] == pytest.approx([GAMMA**3] * 2)
    assert not stored["terminated"].any()


def test_termination_ends_the_window_without_bootstrap():
    buffer = _buffer(n_step=3)
    buffer.add_rollout(
        _rollout(0, [1, 2, 0, 5, 5], terminated=[0, 1, 0, 0, 0], valid=[1, 1, 0, 1, 1]), 0, GAMMA
    )
    stored = _stored(buffer)
    assert stored["rewards"] == pytest.approx([1 + 0.5 * 2, 2])
    np.testing.assert_array_equal(stored["terminated"], [True, True])


def test_truncation_ends_the_window_and_bootstraps_from_the_final_observation():
    buffer = _buffer(n_step=3)
    buffer.add_rollout(
        _rollout(0, [1, 2, 0, 5, 5], truncated=[0, 1, 0, 0, 0], valid=[1, 1, 0, 1, 1]), 0, GAMMA
    )
    stored = _stored(buffer)
    assert stored["rewards"][0] == pytest.approx(1 + 0.5 * 2)
    assert stored["next_obs"][0, 0] == 2  # the final observation of the cut episode
    assert stored["discounts"][0] == pytest.approx(GAMMA**2)
    assert not stored["terminated"][0]


def test_n_step_windows_continue_into_the_same_workers_next_rollout():
    buffer = _buffer(n_step=3)
    buffer.add_rollout(_rollout(0, [1, 1]), source=0, gamma=GAMMA)
    assert len(buffer) == 0  # both windows still open
    buffer.add_rollout(_rollout(2, [1, 1]), source=0, gamma=GAMMA)
    stored = _stored(buffer)
    np.testing.assert_array_equal(stored["obs"][:, 0], [0, 1])
    np.testing.assert_array_equal(stored["next_obs"][:, 0], [3, 4])
    assert stored["rewards"] == pytest.approx([1.75, 1.75])


def test_full_buffer_overwrites_the_oldest_transitions():
    buffer = _buffer(capacity=3)
    buffer.add_rollout(_rollout(0, [1, 1]), 0, GAMMA)
    buffer.add_rollout(_rollout(2, [1, 1, 1]), 0, GAMMA)
    assert len(buffer) == 3
    np.testing.assert_array_equal(_stored(buffer)["obs"][:, 0], [2, 3, 4])


def test_samples_have_batch_shapes_for_box_actions():
    buffer = ReplayBuffer(10, seeds=[0, 1])
    for seed_index in range(2):
        buffer.add(
            seed_index,
            Transitions(
                obs={"vector": np.ones((4, 3), np.float32)},
                actions=np.ones((4, 2), np.float32),
                rewards=np.ones(4, np.float32),
                next_obs={"vector": np.ones((4, 3), np.float32)},
                terminated=np.zeros(4, bool),
                discounts=np.ones(4, np.float32),
            ),
        )
    batch = buffer.sample(7)
    assert batch.obs["vector"].shape == (2, 7, 3)
    assert batch.actions.shape == (2, 7, 2)
    assert batch.rewards.shape == batch.terminated.shape == batch.discounts.shape == (2, 7)


def test_each_seed_replays_only_its_own_transitions():
    buffer = _buffer(num_seeds=3)
    buffer.add_rollout(_rollout(0, [1, 1, 1, 1], num_seeds=3), 0, GAMMA)
    batch = buffer.sample(50)
    for seed_index in range(3):
        assert set(batch.obs["vector"][seed_index, :, 0] // 1000) == {seed_index}


def test_state_dict_round_trip_restores_transitions_in_order_and_the_sampling_rng():
    buffer = _buffer(capacity=3)
    buffer.add_rollout(_rollout(0, [1, 2, 3, 4]), 0, GAMMA)
    restored = _buffer(capacity=3)
    restored.load_state_dict(buffer.state_dict(include_transitions=True))
    np.testing.assert_array_equal(_stored(restored)["obs"], _stored(buffer)["obs"])
    np.testing.assert_array_equal(restored.sample(5).obs["vector"], buffer.sample(5).obs["vector"])


def test_discarded_held_back_steps_never_join_a_replaced_workers_new_episodes():
    buffer = _buffer(n_step=3)
    buffer.add_rollout(_rollout(0, [1, 1]), source=0, gamma=GAMMA)
    buffer.discard_held_back()
    buffer.add_rollout(_rollout(100, [1, 1, 1]), source=0, gamma=GAMMA)
    np.testing.assert_array_equal(_stored(buffer)["obs"][:, 0], [100])
