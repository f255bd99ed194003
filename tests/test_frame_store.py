"""Image observations in the replay buffer: each frame stored once, every observation read
back exactly as the env produced it."""

import numpy as np
import pytest

from rlsweep.trainables.learning.frame_store import FrameStore
from rlsweep.trainables.learning.replay_buffer import ReplayBuffer
from rlsweep.trainables.sampling.rollout import Rollout

STACK, SIZE = 4, 3
EPISODE_LENGTHS = (5, 1, 7, 3, 9, 2)


class StackedFrames:
    """N envs whose frames [SIZE, SIZE] are all distinct, stacked STACK deep like Atari's,
    episodes of EPISODE_LENGTHS steps, ending in turn by termination and truncation. At an
    episode start env 0 pads its stack with zeros (as ale-py does), env 1 with copies of
    the first frame (as gymnasium's FrameStackObservation does).

    `step` is next-step autoreset: the step after an episode ends shows the reset observation.
    Each observation's vector entry names it: (env, index in that env's observations).
    """

    def __init__(self, num_envs: int = 2):
        self.num_envs = num_envs
        self.frames_made = 0
        self.stacks = [self._reset(env) for env in range(num_envs)]
        self.episode = [0] * num_envs
        self.steps = [0] * num_envs
        self.done = [False] * num_envs
        self.seen: list[list[np.ndarray]] = [[stack.copy()] for stack in self.stacks]

    def _frame(self) -> np.ndarray:
        self.frames_made += 1
        value = self.frames_made
        frame = np.zeros((SIZE, SIZE), np.uint8)
        frame.flat[:3] = (value % 251 + 1, value // 251 % 251 + 1, value // 63001 + 1)  # never all-zero
        return frame

    def _reset(self, env: int) -> np.ndarray:
        first = self._frame()
        padding = np.zeros_like(first) if env % 2 == 0 else first
        return np.stack([padding] * (STACK - 1) + [first])

    def step(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Observations [N, STACK, SIZE, SIZE] after one step, with terminated and truncated [N]."""
        terminated, truncated = np.zeros(self.num_envs, bool), np.zeros(self.num_envs, bool)
        for env in range(self.num_envs):
            if self.done[env]:
                self.stacks[env] = self._reset(env)
                self.episode[env] += 1
                self.steps[env] = 0
                self.done[env] = False
            else:
                self.stacks[env] = np.concatenate([self.stacks[env][1:], self._frame()[None]])
                self.steps[env] += 1
                length = EPISODE_LENGTHS[self.episode[env] % len(EPISODE_LENGTHS)]
                if self.steps[env] >= length:
                    self.done[env] = True
                    (terminated if self.episode[env] % 2 == 0 else truncated)[env] = True
            self.seen[env].append(self.stacks[env].copy())
        return np.stack(self.stacks), terminated, truncated

    def rollout(self, num_steps: int) -> Rollout:
        images = [np.stack(self.stacks)]
        names = [self._names()]
        terminated, truncated, valid = [], [], []
        for _ in range(num_steps):
            valid.append(~np.array(self.done))
            obs, term, trunc = self.step()
            images.append(obs)
            names.append(self._names())
            terminated.append(term)
            truncated.append(trunc)
        steps = (num_steps, 1, self.num_envs)
        return Rollout(
            obs={"image": np.stack(images)[:, None], "vector": np.stack(names)[:, None]},
            actions=np.zeros(steps, np.int64),
            rewards=np.ones(steps, np.float32),
            terminated=np.array(terminated)[:, None],
            truncated=np.array(truncated)[:, None],
            valid=np.array(valid)[:, None],
            extras={},
            episode_returns=np.empty(0),
            episode_lengths=np.empty(0, np.int64),
            episode_seeds=np.empty(0, np.int64),
            sample_time_s=0.0,
        )

    def _names(self) -> np.ndarray:
        return np.array([[env, len(self.seen[env]) - 1] for env in range(self.num_envs)], np.float32)

    def observation(self, name: np.ndarray) -> np.ndarray:
        env, index = (int(v) for v in name)
        return self.seen[env][index]


def _assert_sampled_observations_are_the_envs(buffer: ReplayBuffer, env: StackedFrames, n_step: int) -> None:
    batch = buffer.sample(500)
    assert batch.obs["image"].dtype == np.uint8
    for obs, obs_name, next_obs, next_name in zip(
        batch.obs["image"][0],
        batch.obs["vector"][0],
        batch.next_obs["image"][0],
        batch.next_obs["vector"][0],
        strict=True,
    ):
        np.testing.assert_array_equal(obs, env.observation(obs_name))
        np.testing.assert_array_equal(next_obs, env.observation(next_name))
        assert 1 <= next_name[1] - obs_name[1] <= n_step


@pytest.mark.parametrize("n_step", [1, 3])
def test_replayed_image_observations_are_exactly_the_envs_across_episode_starts_and_ring_wraps(n_step):
    env = StackedFrames()
    buffer = ReplayBuffer(40, seeds=[0], n_step=n_step)
    for _ in range(12):  # 12 rollouts of 2 envs x 16 steps: the 40-transition ring wraps many times
        buffer.add_rollout(env.rollout(16), source=0, gamma=0.9)
        _assert_sampled_observations_are_the_envs(buffer, env, n_step)
    assert buffer.frames.written[0] > 3 * buffer.frames.ring_size


def test_stacked_frames_are_stored_once_each():
    env = StackedFrames()
    buffer = ReplayBuffer(10_000, seeds=[0])
    rollouts = [env.rollout(32) for _ in range(4)]
    for rollout in rollouts:
        buffer.add_rollout(rollout, source=0, gamma=0.9)
    # Every distinct frame once, plus the padding of each episode's first stack.
    episodes = sum(episode + 1 for episode in env.episode)
    assert buffer.frames.written[0] == env.frames_made + (STACK - 1) * episodes
    assert buffer.storage.obs["image"].dtype == np.int64  # references, not pixels


def test_a_checkpointed_buffer_replays_the_same_images():
    env = StackedFrames()
    buffer = ReplayBuffer(40, seeds=[0], n_step=3)
    for _ in range(6):
        buffer.add_rollout(env.rollout(16), source=0, gamma=0.9)
    restored = ReplayBuffer(40, seeds=[0], n_step=3)
    restored.load_state_dict(buffer.state_dict(include_transitions=True))
    assert len(restored) == len(buffer)
    _assert_sampled_observations_are_the_envs(restored, env, 3)
    restored.add_rollout(env.rollout(16), source=0, gamma=0.9)
    _assert_sampled_observations_are_the_envs(restored, env, 3)


def test_a_frame_store_reuses_the_channels_a_step_shares_with_the_one_before():
    store = FrameStore(num_seeds=1, capacity=100)
    frames = np.arange(1, 7, dtype=np.uint8)[:, None, None] * np.ones((1, 2, 2), np.uint8)  # 6 frames
    stacks = np.stack([frames[t : t + STACK] for t in range(3)])[:, None]  # [3 steps, 1 env, 4, 2, 2]
    refs = store.add(0, 0, stacks)
    assert store.written[0] == STACK + 2
    np.testing.assert_array_equal(refs[1, 0], [1, 2, 3, 4])
    np.testing.assert_array_equal(store.get(np.zeros(1, int), refs[:, 0]), stacks[:, 0])


def test_a_million_atari_transitions_take_about_one_frame_each():
    buffer = ReplayBuffer(1_000_000, seeds=[0])
    env_frames = np.zeros((17, 1, 8, 4, 84, 84), np.uint8)  # a rollout: 16 steps of 8 envs
    env_frames[:, 0, :, -1] = np.arange(17)[:, None, None, None]  # a new last frame every step
    env_frames[1:, 0, :, :-1] = env_frames[:-1, 0, :, 1:]
    steps = (16, 1, 8)
    buffer.add_rollout(
        Rollout(
            obs={"image": env_frames},
            actions=np.zeros(steps, np.int64),
            rewards=np.zeros(steps, np.float32),
            terminated=np.zeros(steps, bool),
            truncated=np.zeros(steps, bool),
            valid=np.ones(steps, bool),
            extras={},
            episode_returns=np.empty(0),
            episode_lengths=np.empty(0, np.int64),
            episode_seeds=np.empty(0, np.int64),
            sample_time_s=0.0,
        ),
        source=0,
        gamma=0.99,
    )
    frame_bytes = buffer.frames.frames.nbytes  # reserved (pages are touched only when written)
    per_transition = sum(array.nbytes for array in buffer.storage.obs.values()) * 2 / 1_000_000
    assert frame_bytes < 1.1 * 1_000_000 * 84 * 84  # 7.8 GB, not 56 GB of stacked obs and next_obs
    assert per_transition <= 64  # two references of 4 channels
