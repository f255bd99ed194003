"""Encoders that fit any observation: the convolutions an image's size chooses, both channel
orders, texts embedded or dropped when constant, and one line for spaces no encoder takes."""

import logging

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlsweep.trainables import ConfigError
from rlsweep.trainables.models.encoders import CNNSpec, Encoder
from rlsweep.trainables.models.observations import TEXT_TOKENS, ObservationLayout
from rlsweep.trainables.models.policies import ActorCriticPolicy
from rlsweep.trainables.ppo import PPOConfig
from rlsweep.trainables.seeds import generators

SMALL_GRID = CNNSpec((16, 32, 64), (2, 2, 2), (1, 1, 1))


class MissionSpace(gym.spaces.Space[str]):
    """MiniGrid's mission space as it is written there: strings from a function of placeholders."""

    def __init__(self, mission_func, ordered_placeholders=None):
        self.mission_func, self.ordered_placeholders = mission_func, ordered_placeholders
        super().__init__(dtype=str)

    def sample(self) -> str:
        if self.ordered_placeholders is None:
            return self.mission_func()
        return self.mission_func(*(choices[0] for choices in self.ordered_placeholders))

    def contains(self, x) -> bool:
        if self.ordered_placeholders is None:
            return x == self.mission_func()
        return isinstance(x, str)


def _image(height: int, width: int, channels_last: bool) -> gym.spaces.Box:
    shape = (height, width, 3) if channels_last else (3, height, width)
    return gym.spaces.Box(0, 255, shape, np.uint8)


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [
        (3, 3, CNNSpec((16, 32), (2, 2), (1, 1))),
        (7, 7, SMALL_GRID),
        (10, 10, CNNSpec((16, 32, 64), (3, 3, 3), (1, 1, 1))),
        (64, 64, CNNSpec.nature()),
        (84, 84, CNNSpec.nature()),
        (210, 160, CNNSpec.nature()),
    ],
)
def test_the_image_size_chooses_the_convolutions(height, width, expected):
    assert CNNSpec.for_image(height, width) == expected


@pytest.mark.parametrize("channels_last", [True, False], ids=["HWC", "CHW"])
@pytest.mark.parametrize(
    ("height", "width", "features"),
    [
        (3, 3, 32 * 1 * 1),
        (7, 7, 64 * 4 * 4),
        (64, 64, 64 * 4 * 4),
        (84, 84, 64 * 7 * 7),
        (210, 160, 64 * 22 * 16),
    ],
)
def test_the_encoder_fits_any_image_size_in_either_channel_order(height, width, features, channels_last):
    layout = ObservationLayout.of(_image(height, width, channels_last))
    encoder = Encoder(generators([0, 1]), layout, None)
    batch = np.stack([_image(height, width, channels_last).sample() for _ in range(3)])
    obs = {"image": torch.as_tensor(layout.encode(batch)["image"])[None].expand(2, -1, -1, -1, -1)}
    assert layout.image_shape == (3, height, width)
    assert encoder.out_dim == features
    assert encoder(obs).shape == (2, 3, features)


def test_configured_convolutions_override_the_size_choice():
    config = PPOConfig(cnn_channels=(8,), cnn_kernels=(3,), cnn_strides=(2,))
    policy = ActorCriticPolicy(config, _image(7, 7, True), gym.spaces.Discrete(3), "cpu", [0])
    assert policy.spec.cnn == CNNSpec((8,), (3,), (2,))


def test_a_configured_cnn_that_shrinks_a_grid_to_nothing_names_the_keys():
    config = PPOConfig(cnn_channels=(32, 64, 64), cnn_kernels=(8, 4, 3), cnn_strides=(4, 2, 1))
    with pytest.raises(ConfigError, match=r"'cnn_kernels' \[8, 4, 3\] and 'cnn_strides' \[4, 2, 1\]"):
        ActorCriticPolicy(config, _image(7, 7, True), gym.spaces.Discrete(3), "cpu", [0])


def test_a_dict_with_a_varying_text_embeds_its_words_beside_image_and_vector():
    space = gym.spaces.Dict(
        {
            "image": _image(7, 7, True),
            "direction": gym.spaces.Discrete(4),
            "mission": gym.spaces.Text(max_length=40, charset="abcdefghijklmnopqrstuvwxyz "),
        }
    )
    layout = ObservationLayout.of(space)
    policy = ActorCriticPolicy(PPOConfig(), space, gym.spaces.Discrete(3), "cpu", [0])
    encoded = layout.encode_one({"image": space["image"].sample(), "direction": 2, "mission": "go to red"})
    features = policy.network.torso[0]({key: torch.as_tensor(value)[None] for key, value in encoded.items()})
    assert encoded["text"].shape == (1, TEXT_TOKENS)
    assert features.shape == (1, 1, 64 * 4 * 4 + TEXT_TOKENS * 8 + 4)


def test_different_missions_encode_to_different_tokens():
    space = gym.spaces.Dict(
        {"mission": MissionSpace(lambda color: f"go to the {color} ball", [["red", "blue"]])}
    )
    layout = ObservationLayout.of(space)
    red, blue = (
        layout.encode_one({"mission": f"go to the {color} ball"})["text"] for color in ("red", "blue")
    )
    assert not np.array_equal(red, blue)


def test_a_constant_mission_is_dropped_with_one_notice(caplog):
    space = gym.spaces.Dict(
        {"image": _image(7, 7, True), "mission": MissionSpace(lambda: "get to the green goal square")}
    )
    with caplog.at_level(logging.WARNING):
        layouts = [ObservationLayout.of(space) for _ in range(3)]
    encoded = layouts[0].encode_one(
        {"image": space["image"].sample(), "mission": "get to the green goal square"}
    )
    assert set(encoded) == {"image"}
    assert len([r for r in caplog.records if "get to the green goal square" in r.getMessage()]) == 1


@pytest.mark.parametrize(
    "part",
    [
        gym.spaces.Graph(node_space=gym.spaces.Box(0, 1, (2,)), edge_space=None),
        gym.spaces.Sequence(gym.spaces.Discrete(3)),
    ],
    ids=["Graph", "Sequence"],
)
def test_a_space_no_encoder_takes_is_one_line_naming_it(part):
    with pytest.raises(ConfigError, match=f"holds {type(part).__name__} observations") as error:
        ObservationLayout.of(gym.spaces.Dict({"position": gym.spaces.Discrete(3), "part": part}))
    assert "\n" not in str(error.value)
