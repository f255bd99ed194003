import numpy as np
import pytest

from rlsweep.trainables.learning.advantages import compute_gae

GAMMA, LAM = 0.9, 0.5


def _gae(rewards, values, next_values, terminated, truncated):
    as_column = lambda xs, dtype=np.float32: np.asarray(xs, dtype=dtype)[:, None]  # noqa: E731
    advantages, returns = compute_gae(
        as_column(rewards),
        as_column(values),
        as_column(next_values),
        as_column(terminated, bool),
        as_column(truncated, bool),
        GAMMA,
        LAM,
    )
    return advantages[:, 0], returns[:, 0]


def test_gae_matches_hand_computed_values_within_an_episode():
    advantages, returns = _gae([1, 1], [0.5, 0.4], [0.4, 0.3], [0, 0], [0, 0])
    delta1 = 1 + GAMMA * 0.3 - 0.4
    delta0 = 1 + GAMMA * 0.4 - 0.5
    assert advantages == pytest.approx([delta0 + GAMMA * LAM * delta1, delta1])
    assert returns == pytest.approx(advantages + np.array([0.5, 0.4]))


def test_termination_does_not_bootstrap():
    advantages, _ = _gae([1], [0.5], [10.0], [1], [0])
    assert advantages == pytest.approx([1 - 0.5])


def test_truncation_bootstraps_from_the_final_observation():
    advantages, _ = _gae([1], [0.5], [10.0], [0], [1])
    assert advantages == pytest.approx([1 + GAMMA * 10.0 - 0.5])


def test_advantage_does_not_flow_back_across_an_episode_boundary():
    # Step 0 ends an episode by truncation; step 1 belongs to the next episode.
    advantages, _ = _gae([1, 5], [0.5, 0.2], [2.0, 0.7], [0, 0], [1, 0])
    assert advantages[0] == pytest.approx(1 + GAMMA * 2.0 - 0.5)
    assert advantages[1] == pytest.approx(5 + GAMMA * 0.7 - 0.2)


def test_gae_with_lambda_one_equals_discounted_return_minus_value():
    rewards = np.array([[1.0], [2.0], [3.0]], dtype=np.float32)
    values = np.array([[0.1], [0.2], [0.3]], dtype=np.float32)
    zeros = np.zeros((3, 1), dtype=bool)
    terminated = np.array([[False], [False], [True]])
    next_values = np.array([[0.2], [0.3], [9.9]], dtype=np.float32)  # V(s_{t+1}); the last is ignored
    _, returns = compute_gae(rewards, values, next_values, terminated, zeros, 0.5, 1.0)
    assert returns[:, 0] == pytest.approx([1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3])
