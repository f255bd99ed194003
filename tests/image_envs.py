"""Small image envs for tests: `gym.make("image_envs:NAME")`.

Each step shows a 10x10 uint8 picture, black but for a 2x2 dot in its left or right half
(at a random height); an episode is 8 steps, and a policy that sees which side the dot is
on scores 8, a blind one about half of that. Learning it proves the CNN reads pixels.
"""

import gymnasium as gym
import numpy as np

EPISODE_LENGTH = 8
SIZE = 10


class DotSide(gym.Env):
    """Observation uint8 [1, 10, 10] (channels first); action Discrete(2): 0 for a dot on the
    left, 1 for one on the right; reward 1 when right."""

    observation_space = gym.spaces.Box(0, 255, (1, SIZE, SIZE), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return self._observe(), {}

    def step(self, action):
        reward = self._reward(action)
        self.steps += 1
        return self._observe(), reward, False, self.steps >= EPISODE_LENGTH, {}

    def _observe(self):
        self.side = int(self.np_random.integers(2))
        row = int(self.np_random.integers(SIZE - 1))
        column = int(self.np_random.integers(SIZE // 2 - 1)) + self.side * SIZE // 2
        picture = np.zeros((SIZE, SIZE), np.uint8)
        picture[row : row + 2, column : column + 2] = 255
        return self._observation(picture)

    def _observation(self, picture):
        return picture[None]

    def _reward(self, action):
        return float(int(action) == self.side)


class DotSideWithVector(DotSide):
    """The picture channels last, inside a Dict with a vector of noise: only the image tells the side."""

    observation_space = gym.spaces.Dict(
        {
            "camera": gym.spaces.Box(0, 255, (SIZE, SIZE, 1), np.uint8),
            "noise": gym.spaces.Box(-1, 1, (2,), np.float32),
        }
    )

    def _observation(self, picture):
        return {"camera": picture[..., None], "noise": self.np_random.uniform(-1, 1, 2).astype(np.float32)}


class DotSideContinuous(DotSide):
    """Action Box(-1, 1): its sign names the side (positive: right); reward = action * (+1 right, -1 left)."""

    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def _reward(self, action):
        return float(np.asarray(action).item() * (1 if self.side else -1))


for name, cls in [
    ("DotSide-v0", DotSide),
    ("DotSideWithVector-v0", DotSideWithVector),
    ("DotSideContinuous-v0", DotSideContinuous),
]:
    if name not in gym.registry:
        gym.register(name, entry_point=cls)
