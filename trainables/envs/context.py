"""`env_config` as an env class or factory receives it: RLlib's `EnvContext`."""

from __future__ import annotations

from typing import Any


class EnvContext(dict):
    """`env_config` as a class, factory or register_env creator receives it (RLlib's EnvContext):
    the user's keys, plus where this copy of the env runs."""

    def __init__(
        self,
        env_config: dict[str, Any] | None = None,
        worker_index: int = 0,
        num_workers: int = 0,
        vector_index: int = 0,
    ):
        super().__init__(env_config or {})
        self.worker_index = worker_index
        """1..num_workers in rollout worker actors; 0 in the trainable's own process (its
        sampler when num_workers is 0, evaluation envs, the env that tells the spaces)."""
        self.num_workers = num_workers
        """Rollout worker actors of the trial."""
        self.vector_index = vector_index
        """Which of a worker's `num_envs_per_worker` envs this is."""

    def __repr__(self) -> str:
        return (
            f"EnvContext({dict(self)}, worker_index={self.worker_index}, "
            f"num_workers={self.num_workers}, vector_index={self.vector_index})"
        )
