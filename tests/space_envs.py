"""Small envs with structured spaces, for tests: `gym.make("space_envs:NAME")`.

Each episode is 8 steps; every step shows a random target and rewards the action that
matches it, so a policy that reads its observation scores 8 and a blind one about a third
of that. The masked envs raise if an agent ever takes a forbidden action.
"""

import gymnasium as gym
import numpy as np

EPISODE_LENGTH = 8


class _MatchEnv(gym.Env):
    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return self._observe(), self._info()

    def step(self, action):
        reward = self._reward(action)
        self.steps += 1
        return self._observe(), reward, False, self.steps >= EPISODE_LENGTH, self._info()

    def _observe(self):
        self.target = self.np_random.integers(3, size=2)
        return self._observation()

    def _info(self):
        return {}


class DictObservationMultiDiscreteAction(_MatchEnv):
    """Observation {target: (Discrete 3, Discrete 3), noise: Box}; action MultiDiscrete([3, 3]);
    reward 0.5 per dimension that matches."""

    observation_space = gym.spaces.Dict(
        {
            "target": gym.spaces.Tuple((gym.spaces.Discrete(3), gym.spaces.Discrete(3))),
            "noise": gym.spaces.Box(-1, 1, (2,), np.float32),
        }
    )
    action_space = gym.spaces.MultiDiscrete([3, 3])

    def _observation(self):
        noise = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return {"target": (int(self.target[0]), int(self.target[1])), "noise": noise}

    def _reward(self, action):
        return 0.5 * float(np.sum(np.asarray(action) == self.target))


class TupleObservationMultiBinaryAction(_MatchEnv):
    """Observation (MultiBinary 3 target bits, Box); action MultiBinary(3); reward 1/3 per bit
    equal to the target's."""

    observation_space = gym.spaces.Tuple((gym.spaces.MultiBinary(3), gym.spaces.Box(-1, 1, (1,), np.float32)))
    action_space = gym.spaces.MultiBinary(3)

    def _observe(self):
        self.target = self.np_random.integers(2, size=3).astype(np.int8)
        return self.target.copy(), self.np_random.uniform(-1, 1, 1).astype(np.float32)

    def _reward(self, action):
        return float(np.sum(np.asarray(action) == self.target)) / 3


class _MaskedChoice(_MatchEnv):
    """Action Discrete(4); each step forbids one random action. Reward 1 for the action
    `target`, which is always allowed; a forbidden action raises."""

    action_space = gym.spaces.Discrete(4)

    def _observe(self):
        self.target = int(self.np_random.integers(4))
        self.forbidden = int((self.target + 1 + self.np_random.integers(3)) % 4)
        self.mask = np.ones(4, dtype=np.int8)
        self.mask[self.forbidden] = 0
        return self._observation()

    def _reward(self, action):
        if int(action) == self.forbidden:
            raise AssertionError(f"forbidden action {action} taken (mask {self.mask})")
        return float(int(action) == self.target)

    def _one_hot_target(self):
        return np.eye(4, dtype=np.float32)[self.target]


class MaskInObservation(_MaskedChoice):
    observation_space = gym.spaces.Dict(
        {"target": gym.spaces.Box(0, 1, (4,), np.float32), "action_mask": gym.spaces.MultiBinary(4)}
    )

    def _observation(self):
        return {"target": self._one_hot_target(), "action_mask": self.mask.copy()}


class MaskInInfo(_MaskedChoice):
    observation_space = gym.spaces.Box(0, 1, (4,), np.float32)

    def _observation(self):
        return self._one_hot_target()

    def _info(self):
        return {"action_mask": self.mask.copy()}


for name, cls in [
    ("DictMultiDiscrete-v0", DictObservationMultiDiscreteAction),
    ("TupleMultiBinary-v0", TupleObservationMultiBinaryAction),
    ("MaskInObservation-v0", MaskInObservation),
    ("MaskInInfo-v0", MaskInInfo),
]:
    if name not in gym.registry:
        gym.register(name, entry_point=cls)
