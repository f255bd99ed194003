"""Experience replay for off-policy learners: numpy ring buffers of (n-step) transitions,
one per seed, sampled together as [K, B] batches. Image observations are stored by
reference into a FrameStore, each frame once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from rlsweep.trainables.learning.frame_store import FrameStore
from rlsweep.trainables.models.observations import Observations
from rlsweep.trainables.sampling.rollout import Rollout


@dataclass
class Transitions:
    """A batch of transitions; `next_obs` is observed `n` steps after `obs` (fewer where the
    episode ended first), and `rewards` sums the discounted rewards in between. Arrays are
    [B, ...] for one seed, [K, B, ...] for all."""

    obs: Observations  # raw
    actions: np.ndarray  # Discrete: indices; Box: env-scale actions
    rewards: np.ndarray  # float32
    next_obs: Observations  # raw
    terminated: np.ndarray  # bool: next_obs is terminal, so its value is 0
    discounts: np.ndarray  # float32: gamma^k for the k steps between obs and next_obs

    def select(self, index: Any) -> Transitions:
        """These transitions at `index` along the leading axes (every entry the same way)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return Transitions(
            **{
                name: {k: v[index] for k, v in value.items()} if isinstance(value, dict) else value[index]
                for name, value in values.items()
            }
        )


@dataclass
class Steps:
    """Consecutive steps of one seed's N envs, as in a Rollout: obs has one more row than
    the rest, so obs[t + 1] is the observation that followed step t."""

    obs: Observations  # each [T+1, N, ...]
    actions: np.ndarray  # [T, N, ...]
    rewards: np.ndarray  # [T, N]
    terminated: np.ndarray  # [T, N]
    truncated: np.ndarray  # [T, N]
    valid: np.ndarray  # [T, N]

    @classmethod
    def of_seed(cls, rollout: Rollout, seed_index: int) -> Steps:
        return cls(
            obs={key: value[:, seed_index] for key, value in rollout.obs.items()},
            actions=rollout.actions[:, seed_index],
            rewards=rollout.rewards[:, seed_index],
            terminated=rollout.terminated[:, seed_index],
            truncated=rollout.truncated[:, seed_index],
            valid=rollout.valid[:, seed_index],
        )

    def __len__(self) -> int:
        return len(self.rewards)

    def then(self, later: Steps) -> Steps:
        """These steps followed by `later`, whose first observation is this one's last."""
        return Steps(
            obs={key: np.concatenate([value[:-1], later.obs[key]]) for key, value in self.obs.items()},
            **{
                name: np.concatenate([getattr(self, name), getattr(later, name)])
                for name in ("actions", "rewards", "terminated", "truncated", "valid")
            },
        )

    def tail(self, start: int) -> Steps:
        """Steps from `start` on."""
        return Steps(
            obs={key: value[start:] for key, value in self.obs.items()},
            **{
                name: getattr(self, name)[start:]
                for name in ("actions", "rewards", "terminated", "truncated", "valid")
            },
        )


def n_step_transitions(steps: Steps, n: int, gamma: float) -> Transitions:
    """The n-step transitions starting at every valid step t with t + n <= T.

    The window of step t runs until n steps are summed or its episode ends. A terminated
    window marks the transition terminal (no bootstrap). A truncated one bootstraps from
    the episode's final observation, `obs[end + 1]`: the episode was cut, not over.
    Windows never reach an autoreset step, since one only follows an episode's end.
    """
    num_starts = max(0, len(steps) - n + 1)
    starts = np.arange(num_starts)  # [S]
    shape = (num_starts, steps.rewards.shape[1])  # [S, N]
    returns = np.zeros(shape, dtype=np.float32)
    discounts = np.ones(shape, dtype=np.float32)
    last = np.broadcast_to(starts[:, None], shape).copy()  # index of the last step in each window
    open_ = np.ones(shape, dtype=bool)  # the window has not reached its episode's end yet
    for k in range(n):
        t = starts + k
        returns += np.where(open_, discounts * steps.rewards[t], 0)
        last = np.where(open_, t[:, None], last)
        discounts = np.where(open_, discounts * gamma, discounts)
        open_ &= ~(steps.terminated[t] | steps.truncated[t])
    envs = np.arange(shape[1])[None, :]  # [1, N]
    valid = steps.valid[:num_starts]
    return Transitions(
        obs={key: value[:num_starts][valid] for key, value in steps.obs.items()},
        actions=steps.actions[:num_starts][valid],
        rewards=returns[valid],
        next_obs={key: value[last + 1, envs][valid] for key, value in steps.obs.items()},
        terminated=steps.terminated[last, envs][valid],
        discounts=discounts[valid],
    )


class ReplayBuffer:
    """K fixed-capacity ring buffers of transitions, one per seed; the oldest are
    overwritten first. Seed k samples with its own generator, seeded from `seeds[k]`.

    `add_rollout` turns each worker's consecutive rollouts into n-step transitions. A
    step's window may reach into the worker's next rollout, so the last n - 1 steps of
    each are held back until it arrives. Storage is allocated on the first transitions,
    shaped like them.

    The "image" entry of obs and next_obs is stored as references into `frames` ([C] int64
    per observation, see `rlsweep.trainables.learning.frame_store`) and read back as uint8 images by
    `sample`. When the frame ring has overwritten a transition's oldest frames (which
    happens to a few of the oldest when episodes are short), that transition is no longer
    sampled, nor counted by `len`.
    """

    def __init__(self, capacity: int, seeds: Sequence[int], n_step: int = 1):
        self.capacity = capacity
        self.n_step = n_step
        self.num_seeds = len(seeds)
        self.storage: Transitions | None = None  # [K, capacity, ...]
        self.position = np.zeros(self.num_seeds, dtype=np.int64)  # where each seed's next transition goes
        self.sizes = np.zeros(self.num_seeds, dtype=np.int64)
        self.rngs = [np.random.default_rng(seed) for seed in seeds]
        self.pending: dict[tuple[int, int], Steps] = {}  # per (worker, seed): steps whose window is open
        self.frames = FrameStore(self.num_seeds, capacity)

    def __len__(self) -> int:
        """Transitions per seed that can be sampled (the fewest any seed has)."""
        if not self.frames.overwritten():
            return int(self.sizes.min())
        return int(
            min(self._alive(seed_index, np.arange(size)).sum() for seed_index, size in enumerate(self.sizes))
        )

    def _alive(self, seed_index: int, index: np.ndarray) -> np.ndarray:
        """Whether seed `seed_index`'s transitions at `index` still have all their frames."""
        if self.storage is None or "image" not in self.storage.obs:
            return np.ones(len(index), dtype=bool)
        refs = np.concatenate(
            [self.storage.obs["image"][seed_index, index], self.storage.next_obs["image"][seed_index, index]],
            axis=-1,
        )
        return self.frames.alive(seed_index, refs)

    def add_rollout(self, rollout: Rollout, source: int, gamma: float) -> None:
        """Store the n-step transitions of `rollout`, the next one from worker `source`."""
        for seed_index in range(self.num_seeds):
            steps = Steps.of_seed(rollout, seed_index)
            if "image" in steps.obs:
                steps.obs["image"] = self.frames.add(seed_index, source, steps.obs["image"])  # [T+1, N, C]
            if (source, seed_index) in self.pending:
                steps = self.pending[source, seed_index].then(steps)
            self.add(seed_index, n_step_transitions(steps, self.n_step, gamma))
            self.pending[source, seed_index] = steps.tail(max(0, len(steps) - self.n_step + 1))

    def discard_held_back(self) -> None:
        """Forget the steps held back for open windows: after a worker is replaced, its new
        envs start new episodes, so those windows will never continue."""
        self.pending.clear()
        self.frames.forget_latest()

    def add(self, seed_index: int, transitions: Transitions) -> None:
        count = len(transitions.rewards)
        if count > self.capacity:  # only the newest `capacity` would survive anyway
            transitions = transitions.select(slice(-self.capacity, None))
            count = self.capacity
        if self.storage is None:
            self.storage = _allocate(transitions, self.num_seeds, self.capacity)
        index = (self.position[seed_index] + np.arange(count)) % self.capacity
        _assign(self.storage, (seed_index, index), transitions)
        self.position[seed_index] = (self.position[seed_index] + count) % self.capacity
        self.sizes[seed_index] = min(self.sizes[seed_index] + count, self.capacity)

    def sample(self, batch_size: int) -> Transitions:
        """`batch_size` transitions per seed, each drawn uniformly from its own buffer with
        replacement: [K, batch_size, ...]."""
        assert self.storage is not None
        index = np.stack([self._sample_index(seed_index, batch_size) for seed_index in range(self.num_seeds)])
        rows = np.arange(self.num_seeds)[:, None]  # [K, 1]
        transitions = self.storage.select((rows, index))
        if "image" in transitions.obs:
            transitions.obs["image"] = self.frames.get(rows, transitions.obs["image"])
            transitions.next_obs["image"] = self.frames.get(rows, transitions.next_obs["image"])
        return transitions

    def _sample_index(self, seed_index: int, batch_size: int) -> np.ndarray:
        """Uniform indices of seed `seed_index`'s transitions that still have their frames."""
        rng, size = self.rngs[seed_index], self.sizes[seed_index]
        index = rng.integers(0, size, size=batch_size)
        dead = ~self._alive(seed_index, index)
        while dead.any():
            index[dead] = rng.integers(0, size, size=int(dead.sum()))
            dead[dead] = ~self._alive(seed_index, index[dead])
        return index

    def state_dict(self, include_transitions: bool) -> dict[str, Any]:
        """The sampling generators, and optionally each seed's transitions, oldest first."""
        state: dict[str, Any] = {"rngs": [rng.bit_generator.state for rng in self.rngs]}
        if include_transitions and self.storage is not None:
            state["frames"] = self.frames.state_dict()  # what image references point to
            state["transitions"] = [
                self.storage.select(
                    (seed_index, (self.position[seed_index] - size + np.arange(size)) % self.capacity)
                )
                for seed_index, size in enumerate(self.sizes)
            ]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict`; stored transitions replace this buffer's, if it has any.

        Steps held back for n-step windows stay when the state has no transitions: they
        belong to this trial's workers, whose envs keep running, not to the checkpoint's.
        """
        for rng, rng_state in zip(self.rngs, state["rngs"], strict=True):
            rng.bit_generator.state = rng_state
        if "transitions" in state:
            if state["frames"]:
                # Image references held back here belong to the frames being replaced.
                self.discard_held_back()
                self.frames.load_state_dict(state["frames"])
            self.position[:] = self.sizes[:] = 0
            for seed_index, transitions in enumerate(state["transitions"]):
                self.add(seed_index, transitions)


def _allocate(like: Transitions, num_seeds: int, capacity: int) -> Transitions:
    def zeros(array: np.ndarray) -> np.ndarray:
        return np.zeros((num_seeds, capacity, *array.shape[1:]), dtype=array.dtype)

    return Transitions(
        obs={key: zeros(value) for key, value in like.obs.items()},
        actions=zeros(like.actions),
        rewards=zeros(like.rewards),
        next_obs={key: zeros(value) for key, value in like.next_obs.items()},
        terminated=zeros(like.terminated),
        discounts=zeros(like.discounts),
    )


def _assign(storage: Transitions, index: Any, transitions: Transitions) -> None:
    for f in fields(Transitions):
        target, source = getattr(storage, f.name), getattr(transitions, f.name)
        if isinstance(target, dict):
            for key in target:
                target[key][index] = source[key]
        else:
            target[index] = source
