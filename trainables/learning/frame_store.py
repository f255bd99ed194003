"""Image observations stored by their frames, each frame once: what lets a replay buffer of
a million Atari transitions fit in memory.

An Atari observation stacks the last 4 frames [4, 84, 84]; consecutive observations of an
env share 3 of them, and a transition's next observation is the next transition's
observation. Stored as they are, obs and next_obs would keep every frame 8 times (56 GB
for 1M transitions); here each is kept once (7 GB).

A FrameStore keeps, per seed, a ring of single image channels [capacity, H, W] uint8 and
gives each observation a reference: the absolute positions of its C channels, [C] int64.
A new observation of an env reuses the channels it has in common with that env's previous
observation: the most channels k such that its first k equal the previous one's last k,
compared pixel for pixel. So stacks of any depth, grayscale or RGB, padded however the env
pads them at episode starts, cost one new frame per step, single frames cost theirs once
for obs and next_obs, and `get` returns exactly the observations the env produced: what
is shared is decided by equal content, never assumed.

The ring overwrites its oldest channels first. A reference is alive while none of its
channels has been overwritten; a replay buffer samples only transitions whose references
are alive.
"""

from __future__ import annotations

from typing import Any

import numpy as np

EPISODE_START_ROOM = 1 / 16
"""Ring room beyond one step's new channels per transition: an episode's first observation
shares nothing with the one before it, and its autoreset step stores one without a transition."""


class FrameStore:
    """K seeds' rings of image channels, filled by `add` with consecutive observations of
    each (seed, worker) pair's envs and read back by reference with `get`.

    The ring holds `capacity` transitions' worth of channels: it is allocated on the first
    `add`, sized from how many new channels a step of those observations brings.
    """

    def __init__(self, num_seeds: int, capacity: int):
        self.num_seeds = num_seeds
        self.capacity = capacity
        self.ring_size = 0
        self.frames: np.ndarray | None = None  # [K, ring_size, H, W] uint8
        self.written = np.zeros(num_seeds, dtype=np.int64)  # channels each seed has written
        self.latest: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        """Per (seed, source): the last observations added [N, C, H, W] and their references [N, C]."""

    def add(self, seed_index: int, source: int, images: np.ndarray) -> np.ndarray:
        """Store consecutive observations [T, N, C, H, W] of one worker's N envs (row 0 follows
        the last row added for this seed and source); returns their references [T, N, C]."""
        if self.frames is None:
            self._allocate(images)
        refs = np.empty(images.shape[:3], dtype=np.int64)
        previous = self.latest.get((seed_index, source))
        for t, observations in enumerate(images):
            refs[t] = self._add_step(seed_index, observations, previous)
            previous = (observations, refs[t])
        assert previous is not None
        self.latest[seed_index, source] = (previous[0].copy(), previous[1].copy())
        return refs

    def _add_step(
        self, seed_index: int, observations: np.ndarray, previous: tuple[np.ndarray, np.ndarray] | None
    ) -> np.ndarray:
        """References [N, C] for one step's observations [N, C, H, W], writing only the channels
        they do not share with `previous` (each env's observation one step earlier)."""
        num_envs, channels = observations.shape[:2]
        shared = np.zeros(num_envs, dtype=np.int64)  # leading channels equal to the previous' trailing ones
        if previous is not None:
            last_images, last_refs = previous
            undecided = self.alive(seed_index, last_refs)
            for k in range(channels, 0, -1):
                same = undecided & (observations[:, :k] == last_images[:, channels - k :]).all(axis=(1, 2, 3))
                shared[same] = k
                undecided &= ~same
        channel = np.arange(channels)[None, :]  # [1, C]
        is_new = channel >= shared[:, None]  # [N, C]
        positions = self.written[seed_index] + np.arange(is_new.sum())
        self.frames[seed_index, positions % self.ring_size] = observations[is_new]
        self.written[seed_index] += len(positions)
        refs = np.empty((num_envs, channels), dtype=np.int64)
        refs[is_new] = positions
        if previous is not None:
            # Channel c < shared[n] of env n is channel c + C - shared[n] of its previous observation.
            source_channel = np.minimum(channel + channels - shared[:, None], channels - 1)
            reused = np.take_along_axis(previous[1], source_channel, axis=1)
            refs[~is_new] = reused[~is_new]
        return refs

    def get(self, seed_indices: np.ndarray, refs: np.ndarray) -> np.ndarray:
        """The observations [..., C, H, W] of references [..., C] of the given seeds
        (an index array broadcasting against refs' leading axes)."""
        assert self.frames is not None
        return self.frames[seed_indices[..., None], refs % self.ring_size]

    def alive(self, seed_index: int, refs: np.ndarray) -> np.ndarray:
        """Whether each reference [..., C] of seed `seed_index` still has all its channels: [...]."""
        return refs.min(axis=-1) >= self.written[seed_index] - self.ring_size

    def overwritten(self) -> bool:
        """Whether any seed's ring has overwritten channels (so some references are dead)."""
        return self.frames is not None and bool((self.written > self.ring_size).any())

    def forget_latest(self) -> None:
        """Compare the next observations with nothing: after a worker was replaced, or after
        `load_state_dict` replaced the references its envs' last observations had."""
        self.latest.clear()

    def _allocate(self, images: np.ndarray) -> None:
        """Size the ring from the first observations: `capacity` steps of the new channels
        their steps bring (1 for stacked grayscale frames, C for single images), plus room
        for episode starts."""
        _, num_envs, channels, height, width = images.shape
        if len(images) > 1:
            shared = np.zeros(num_envs, dtype=np.int64)
            undecided = np.ones(num_envs, dtype=bool)
            for k in range(channels, 0, -1):
                same = undecided & (images[1, :, :k] == images[0, :, channels - k :]).all(axis=(1, 2, 3))
                shared[same] = k
                undecided &= ~same
            per_step = max(1, channels - int(np.median(shared)))
        else:
            per_step = channels
        steps = self.capacity + int(self.capacity * EPISODE_START_ROOM) + 2 * num_envs
        self.ring_size = per_step * steps + channels
        self.frames = np.zeros((self.num_seeds, self.ring_size, height, width), dtype=np.uint8)

    def state_dict(self) -> dict[str, Any]:
        """Each seed's alive channels, oldest first, with the counters references use."""
        if self.frames is None:
            return {}
        kept = np.minimum(self.written, self.ring_size)
        return {
            "written": self.written.copy(),
            "ring_size": self.ring_size,
            "frames": [
                self.frames[
                    seed_index,
                    (self.written[seed_index] - kept[seed_index] + np.arange(kept[seed_index]))
                    % self.ring_size,
                ]
                for seed_index in range(self.num_seeds)
            ],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict`; references into the stored rings stay valid."""
        if not state:
            return
        frames = state["frames"]
        self.ring_size = int(state["ring_size"])
        self.written = np.array(state["written"], dtype=np.int64)
        height, width = frames[0].shape[1:]
        self.frames = np.zeros((self.num_seeds, self.ring_size, height, width), dtype=np.uint8)
        for seed_index, kept in enumerate(frames):
            positions = self.written[seed_index] - len(kept) + np.arange(len(kept))
            self.frames[seed_index, positions % self.ring_size] = kept
        self.forget_latest()
