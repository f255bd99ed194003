"""Replay of fixed-length sequences for recurrent DQN (R2D2, Kapturowski et al. 2019).

Each env's consecutive steps are cut into sequences of `length` steps, a new one every
`period` steps (length - burn_in: every step is trained on in exactly one sequence, after
the burn-in of the next overlapping one), each kept with the recurrent state its first step
was sampled with. Sequences run across episode ends: the learner zeroes the state where an
episode starts and masks the autoreset steps, as PPO does with its sequences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from rlsweep.trainables.sampling.rollout import Rollout

_STEP_FIELDS = ("actions", "rewards", "terminated", "truncated", "valid")


@dataclass
class Sequences:
    """Sequences of L steps: arrays [..., L, ...] ([K, B, L, ...] sampled, [T, K, N, ...]
    pending); `obs` and `memory` have L + 1 rows, the last the observation after step L-1
    (what its TD target bootstraps from) and the state it would be seen with."""

    obs: dict[str, np.ndarray]  # raw
    memory: dict[str, np.ndarray]
    """The policy's state each step's action was chosen with; stored, the buffer's `carried`
    entries have one row, the first step's."""
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    valid: np.ndarray  # False on autoreset steps: no transition, never trained on


class SequenceReplayBuffer:
    """A ring buffer of `capacity` sequences per seed (every seed stores the same number:
    they step together); seed k samples with its own generator, seeded from `seeds[k]`."""

    def __init__(
        self, capacity: int, seeds: Sequence[int], length: int, period: int, carried: Sequence[str] = ()
    ):
        self.capacity, self.length, self.period = capacity, length, period
        self.carried = tuple(carried)
        """State entries kept at a sequence's first step only (the LSTM's: the learner
        unrolls the rest); the others (previous action and reward) at every step."""
        self.rngs = [np.random.default_rng(seed) for seed in seeds]
        self.storage: Sequences | None = None  # arrays [K, capacity, L(+1), ...]
        self.size = 0
        self.next_index = 0
        self.pending: dict[int, Sequences] = {}
        """Each worker's steps not yet cut into sequences, time first: [T(+1), K, N, ...]."""

    def __len__(self) -> int:
        """Transitions whose loss the stored sequences train (after their burn-in)."""
        return self.size * self.period

    def add_rollout(self, rollout: Rollout, source: int, gamma: float = 0.0) -> None:
        """Append `rollout` to the steps `source` (a worker) sent before, and store every
        whole sequence they now hold. `gamma` is unused: targets are computed at replay."""
        del gamma
        steps = Sequences(
            obs=rollout.obs,
            memory=rollout.memory,
            **{name: getattr(rollout, name) for name in _STEP_FIELDS},
        )
        held = self.pending.get(source)
        if held is not None:
            steps = Sequences(
                obs={k: np.concatenate([v[:-1], steps.obs[k]]) for k, v in held.obs.items()},
                memory={k: np.concatenate([v[:-1], steps.memory[k]]) for k, v in held.memory.items()},
                **{
                    name: np.concatenate([getattr(held, name), getattr(steps, name)]) for name in _STEP_FIELDS
                },
            )
        start = 0
        while len(steps.rewards) - start >= self.length:
            self._store(_window(steps, start, self.length))
            start += self.period
        self.pending[source] = _window(steps, start, len(steps.rewards) - start)

    def discard_held_back(self) -> None:
        """Forget the steps waiting for their sequence (a restarted worker does not continue them)."""
        self.pending.clear()

    def _store(self, sequences: Sequences) -> None:
        """Store [L, K, N, ...] sequences, one per env, as [K, N, L, ...] rows."""
        rows = _map(sequences, lambda value: np.moveaxis(value, 0, 2))
        for key in self.carried:
            rows.memory[key] = rows.memory[key][:, :, :1]
        if self.storage is None:
            self.storage = _map(
                rows, lambda value: np.zeros((value.shape[0], self.capacity, *value.shape[2:]), value.dtype)
            )
        count = min(self.capacity, len(rows.rewards[0]))  # the newest, if more than fit
        index = (self.next_index + np.arange(count)) % self.capacity
        storage = _items(self.storage)
        for name, value in _items(rows).items():
            storage[name][:, index] = value[:, value.shape[1] - count :]
        self.next_index = int((self.next_index + count) % self.capacity)
        self.size = min(self.capacity, self.size + count)

    def sample(self, batch_size: int) -> Sequences:
        """`batch_size` sequences per seed, uniformly: arrays [K, B, L(+1), ...]."""
        assert self.storage is not None and self.size > 0
        index = np.stack([rng.integers(0, self.size, size=batch_size) for rng in self.rngs])
        seeds = np.arange(len(self.rngs))[:, None]
        return _map(self.storage, lambda value: value[seeds, index])

    def state_dict(self, include_transitions: bool) -> dict[str, Any]:
        """The sampling generators, and optionally the stored sequences."""
        state: dict[str, Any] = {"rngs": [rng.bit_generator.state for rng in self.rngs]}
        if include_transitions and self.storage is not None:
            state.update(
                storage=_map(self.storage, lambda value: value[:, : self.size].copy()),
                next_index=self.next_index,
            )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for rng, rng_state in zip(self.rngs, state["rngs"], strict=True):
            rng.bit_generator.state = rng_state
        if "storage" in state:
            stored: Sequences = state["storage"]
            self.size = next(iter(stored.obs.values())).shape[1]
            self.storage = _map(
                stored, lambda value: np.zeros((value.shape[0], self.capacity, *value.shape[2:]), value.dtype)
            )
            storage = _items(self.storage)
            for name, value in _items(stored).items():
                storage[name][:, : self.size] = value[:, : self.capacity]
            self.size = min(self.size, self.capacity)
            self.next_index = int(state["next_index"]) % self.capacity


def _items(sequences: Sequences) -> dict[str, np.ndarray]:
    """Every array of `sequences` by a flat name ("obs/vector", "actions", ...): writing
    into one writes into `sequences`."""
    items = {}
    for f in fields(sequences):
        value = getattr(sequences, f.name)
        if isinstance(value, dict):
            items.update({f"{f.name}/{key}": array for key, array in value.items()})
        else:
            items[f.name] = value
    return items


def _map(sequences: Sequences, function: Any) -> Sequences:
    """`function` applied to every array."""
    return Sequences(
        **{
            f.name: {k: function(v) for k, v in value.items()} if isinstance(value, dict) else function(value)
            for f in fields(sequences)
            for value in [getattr(sequences, f.name)]
        }
    )


def _window(steps: Sequences, start: int, length: int) -> Sequences:
    """Steps start..start+length (observations and states one row more), time first."""
    return Sequences(
        obs={k: v[start : start + length + 1] for k, v in steps.obs.items()},
        memory={k: v[start : start + length + 1] for k, v in steps.memory.items()},
        **{name: getattr(steps, name)[start : start + length] for name in _STEP_FIELDS},
    )
