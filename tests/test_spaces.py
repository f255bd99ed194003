"""Observation and action spaces: how observations become network inputs, and the action
distributions PPO samples from, masks included."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlsweep.trainables.config import ConfigError
from rlsweep.trainables.models.distributions import Bernoulli, Categorical, MultiCategorical, action_head
from rlsweep.trainables.models.observations import ObservationLayout


def test_discrete_observations_are_one_hot():
    layout = ObservationLayout.of(gym.spaces.Discrete(4))
    np.testing.assert_array_equal(layout.encode(np.array([2, 0]))["vector"], [[0, 0, 1, 0], [1, 0, 0, 0]])


def test_dict_and_tuple_observations_flatten_into_one_vector():
    space = gym.spaces.Dict(
        {
            "position": gym.spaces.Box(-1, 1, (2,)),
            "state": gym.spaces.Tuple((gym.spaces.Discrete(3), gym.spaces.MultiBinary(2))),
        }
    )
    layout = ObservationLayout.of(space)
    batch = {"position": np.array([[0.5, -0.5]]), "state": (np.array([1]), np.array([[1, 0]]))}
    assert layout.vector_dim == 2 + 3 + 2
    np.testing.assert_array_equal(layout.encode(batch)["vector"], [[0.5, -0.5, 0, 1, 0, 1, 0]])


def test_an_image_inside_a_dict_is_kept_apart_as_uint8_channels_first():
    space = gym.spaces.Dict(
        {"camera": gym.spaces.Box(0, 255, (10, 12, 3), np.uint8), "speed": gym.spaces.Box(0, 1, (1,))}
    )
    layout = ObservationLayout.of(space)
    encoded = layout.encode({"camera": np.zeros((2, 10, 12, 3), np.uint8), "speed": np.ones((2, 1))})
    assert layout.image_shape == (3, 10, 12)
    assert encoded["image"].shape == (2, 3, 10, 12) and encoded["image"].dtype == np.uint8
    assert encoded["vector"].shape == (2, 1)


def test_an_action_mask_in_the_observation_or_in_info_becomes_the_mask():
    space = gym.spaces.Dict({"board": gym.spaces.Box(0, 1, (4,)), "action_mask": gym.spaces.MultiBinary(3)})
    layout = ObservationLayout.of(space)
    encoded = layout.encode({"board": np.zeros((1, 4)), "action_mask": np.array([[1, 0, 1]])})
    assert layout.vector_dim == 4
    np.testing.assert_array_equal(encoded["action_mask"], [[True, False, True]])
    from_info = ObservationLayout.of(gym.spaces.Box(0, 1, (4,))).encode(
        np.zeros((1, 4)), {"action_mask": np.array([[0, 1, 1]])}
    )
    np.testing.assert_array_equal(from_info["action_mask"], [[False, True, True]])


def test_an_unsupported_observation_space_is_named():
    with pytest.raises(ConfigError, match=r"observation space .*holds Graph observations"):
        ObservationLayout.of(gym.spaces.Dict({"graph": gym.spaces.Graph(gym.spaces.Discrete(2), None)}))


def test_an_unsupported_action_space_is_named():
    with pytest.raises(ConfigError, match=r"action space Text"):
        action_head(gym.spaces.Text(5))


def _uniform(*shape):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(0))


def test_a_masked_categorical_never_samples_or_picks_a_forbidden_action():
    logits = torch.tensor([[[5.0, 0.0, 1.0]]]).expand(1, 1000, 3)
    mask = torch.tensor([False, True, True]).expand(1, 1000, 3)
    head = Categorical(3)
    samples = head.sample(logits, _uniform(1, 1000, 3), mask)
    assert not (samples == 0).any()
    assert (head.mode(logits, mask) == 2).all()
    assert torch.isfinite(head.entropy(logits, mask)).all()
    assert head.log_prob(logits, torch.zeros(1, 1000, dtype=torch.long), mask).max() < -1e30


def test_categorical_samples_follow_the_probabilities():
    logits = torch.log(torch.tensor([0.2, 0.8])).expand(1, 20_000, 2)
    samples = Categorical(2).sample(logits, _uniform(1, 20_000, 2), None)
    assert samples.float().mean().item() == pytest.approx(0.8, abs=0.01)


def test_multi_categorical_log_prob_sums_its_dimensions():
    head = MultiCategorical(np.array([2, 3]))
    params = torch.log(torch.tensor([[[0.5, 0.5, 0.2, 0.3, 0.5]]]))
    log_prob = head.log_prob(params, torch.tensor([[[1, 2]]]), None)
    assert log_prob.item() == pytest.approx(np.log(0.5 * 0.5))


def test_multi_categorical_masks_each_dimension():
    head = MultiCategorical(np.array([2, 3]))
    params = torch.zeros(1, 500, 5)
    mask = torch.tensor([True, False, False, True, False]).expand(1, 500, 5)
    samples = head.sample(params, _uniform(1, 500, 5), mask)
    assert (samples[..., 0] == 0).all() and (samples[..., 1] == 1).all()


def test_bernoulli_log_prob_matches_hand_computed_values():
    params = torch.logit(torch.tensor([[[0.9, 0.3]]]))
    log_prob = Bernoulli(2).log_prob(params, torch.tensor([[[1, 0]]]), None)
    assert log_prob.item() == pytest.approx(np.log(0.9 * 0.7), rel=1e-5)
