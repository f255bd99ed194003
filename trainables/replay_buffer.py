"""Experience replay for off-policy learners: a numpy ring buffer of (n-step) transitions."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from rlsweep.trainables.rollout_worker import Rollout


@dataclass
class Transitions:
    """A batch of transitions; `next_obs` is observed `n` steps after `obs` (fewer where the
    episode ended first), and `rewards` sums the discounted rewards in between."""

    obs: np.ndarray  # [B, obs_dim] raw
    actions: np.ndarray  # [B] for Discrete, [B, action_dim] for Box
    rewards: np.ndarray  # [B] float32
    next_obs: np.ndarray  # [B, obs_dim] raw
    terminated: np.ndarray  # [B] bool: next_obs is terminal, so its value is 0
    discounts: np.ndarray  # [B] float32: gamma^k for the k steps between obs and next_obs


@dataclass
class Steps:
    """Consecutive steps of N envs, as in a Rollout: obs has one more row than the rest,
    so obs[t + 1] is the observation that followed step t."""

    obs: np.ndarray  # [T+1, N, obs_dim]
    actions: np.ndarray  # [T, N, ...]
    rewards: np.ndarray  # [T, N]
    terminated: np.ndarray  # [T, N]
    truncated: np.ndarray  # [T, N]
    valid: np.ndarray  # [T, N]

    def __len__(self) -> int:
        return len(self.rewards)

    def then(self, later: Steps) -> Steps:
        """These steps followed by `later`, whose first observation is this one's last."""
        joined = {
            f.name: np.concatenate([getattr(self, f.name), getattr(later, f.name)]) for f in fields(self)
        }
        joined["obs"] = np.concatenate([self.obs[:-1], later.obs])
        return Steps(**joined)

    def tail(self, start: int) -> Steps:
        """Steps from `start` on."""
        return Steps(**{f.name: getattr(self, f.name)[start:] for f in fields(self)})


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
        obs=steps.obs[:num_starts][valid],
        actions=steps.actions[:num_starts][valid],
        rewards=returns[valid],
        next_obs=steps.obs[last + 1, envs][valid],
        terminated=steps.terminated[last, envs][valid],
        discounts=discounts[valid],
    )


class ReplayBuffer:
    """A fixed-capacity ring buffer of transitions; the oldest are overwritten first.

    `add_rollout` turns each worker's consecutive rollouts into n-step transitions. A
    step's window may reach into the worker's next rollout, so the last n - 1 steps of
    each are held back until it arrives.
    """

    def __init__(
        self,
        capacity: int,
        obs_dim: int,
        action_shape: tuple[int, ...],
        action_dtype: np.dtype,
        n_step: int = 1,
        seed: int = 0,
    ):
        self.capacity = capacity
        self.n_step = n_step
        self.storage = Transitions(
            obs=np.zeros((capacity, obs_dim), dtype=np.float32),
            actions=np.zeros((capacity, *action_shape), dtype=action_dtype),
            rewards=np.zeros(capacity, dtype=np.float32),
            next_obs=np.zeros((capacity, obs_dim), dtype=np.float32),
            terminated=np.zeros(capacity, dtype=bool),
            discounts=np.zeros(capacity, dtype=np.float32),
        )
        self.position = 0  # where the next transition goes
        self.size = 0
        self.rng = np.random.default_rng(seed)
        self.pending: dict[int, Steps] = {}  # per worker: steps whose window is still open

    def __len__(self) -> int:
        return self.size

    def add_rollout(self, rollout: Rollout, source: int, gamma: float) -> None:
        """Store the n-step transitions of `rollout`, the next one from worker `source`."""
        steps = Steps(
            rollout.obs,
            rollout.actions,
            rollout.rewards,
            rollout.terminated,
            rollout.truncated,
            rollout.valid,
        )
        if source in self.pending:
            steps = self.pending[source].then(steps)
        self.add(n_step_transitions(steps, self.n_step, gamma))
        self.pending[source] = steps.tail(max(0, len(steps) - self.n_step + 1))

    def discard_held_back(self) -> None:
        """Forget the steps held back for open windows: after a worker is replaced, its new
        envs start new episodes, so those windows will never continue."""
        self.pending.clear()

    def add(self, transitions: Transitions) -> None:
        count = len(transitions.rewards)
        if count > self.capacity:  # only the newest `capacity` would survive anyway
            transitions = Transitions(
                **{f.name: getattr(transitions, f.name)[-self.capacity :] for f in fields(Transitions)}
            )
            count = self.capacity
        index = (self.position + np.arange(count)) % self.capacity
        for f in fields(Transitions):
            getattr(self.storage, f.name)[index] = getattr(transitions, f.name)
        self.position = (self.position + count) % self.capacity
        self.size = min(self.size + count, self.capacity)

    def sample(self, batch_size: int) -> Transitions:
        """`batch_size` transitions drawn uniformly, with replacement."""
        index = self.rng.integers(0, self.size, size=batch_size)
        return Transitions(**{f.name: getattr(self.storage, f.name)[index] for f in fields(Transitions)})

    def state_dict(self, include_transitions: bool) -> dict[str, Any]:
        """The sampling RNG, and optionally the stored transitions, oldest first."""
        state: dict[str, Any] = {"rng": self.rng.bit_generator.state}
        if include_transitions:
            index = (self.position - self.size + np.arange(self.size)) % self.capacity
            state["transitions"] = {f.name: getattr(self.storage, f.name)[index] for f in fields(Transitions)}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict`; stored transitions replace this buffer's, if it has any.

        Steps held back for n-step windows stay: they belong to this trial's workers, whose
        envs keep running, not to the checkpoint's.
        """
        self.rng.bit_generator.state = state["rng"]
        if "transitions" in state:
            self.position = self.size = 0
            self.add(Transitions(**state["transitions"]))
