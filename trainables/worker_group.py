"""A trial's rollout workers: Ray actors placed in the trial's placement group, or one
in-process worker when `num_workers` is 0; a worker that dies or whose env fails is
replaced, up to a bounded number of times per trial."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import ray
from ray.exceptions import OutOfMemoryError, RayActorError, WorkerCrashedError
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from rlsweep.trainables.envs import EnvSpecifier, env_label
from rlsweep.trainables.rollout_worker import EnvError, Rollout, RolloutWorker, SamplingPolicy

logger = logging.getLogger(__name__)

WORKER_FAILURES = (EnvError, RayActorError, OutOfMemoryError, WorkerCrashedError)
"""A sampling failure a fresh worker may not repeat: its process died or its env failed."""


class WorkerFailure(RuntimeError):
    """Workers kept failing past `max_restarts`; the message carries the last failure."""


class WorkerGroup:
    """Creates, feeds, replaces and stops the samplers of one trial.

    Under Tune each actor goes to its own bundle of the trial's placement group (bundle 0
    is the learner's), so a sweep never oversubscribes the CPUs it reserved, and a
    replacement takes the bundle of the worker it replaces.
    """

    def __init__(
        self,
        num_workers: int,
        env: EnvSpecifier,
        env_config: dict[str, Any],
        num_envs_per_worker: int,
        seed: int,
        make_policy: Callable[[], SamplingPolicy],
        max_restarts: int,
    ):
        self.env = env
        self.env_id = env_label(env)
        self.env_config = env_config
        self.num_envs_per_worker = num_envs_per_worker
        self.seed = seed
        self.make_policy = make_policy
        self.max_restarts = max_restarts
        self.num_workers = num_workers
        self.restarts = 0
        self.placement_group = ray.util.get_current_placement_group() if num_workers else None
        self.local_worker = self._local_worker() if num_workers == 0 else None
        self.actors = [self._actor(index) for index in range(num_workers)]

    def _worker_seed(self, index: int) -> int:
        # Distinct env seeds per worker and per replacement, so a new worker does not
        # replay its predecessor's episodes.
        slot = index + self.restarts * max(1, self.num_workers)
        return self.seed + slot * self.num_envs_per_worker

    def _local_worker(self) -> RolloutWorker:
        return RolloutWorker(
            self.env, self.env_config, self.num_envs_per_worker, self._worker_seed(0), self.make_policy
        )

    def _actor(self, index: int) -> ray.actor.ActorHandle:
        strategy = None
        if self.placement_group is not None:
            strategy = PlacementGroupSchedulingStrategy(
                placement_group=self.placement_group, placement_group_bundle_index=index + 1
            )
        return (
            ray.remote(RolloutWorker)
            .options(num_cpus=1, scheduling_strategy=strategy)
            .remote(
                self.env,
                self.env_config,
                self.num_envs_per_worker,
                self._worker_seed(index),
                self.make_policy,
                # RLlib's numbering, which env creators see in their EnvContext: 0 is the
                # trainable's own process, actors are 1..num_workers.
                worker_index=index + 1,
                num_workers=self.num_workers,
            )
        )

    def sample(self, weights: dict[str, Any], num_steps: int) -> list[Rollout]:
        """One rollout per worker, sampled in parallel with the given weights."""
        if self.local_worker is not None:
            while True:
                try:
                    return [self.local_worker.sample(weights, num_steps)]
                except EnvError as error:
                    self._count_restart(error)
                    self.local_worker.close()
                    self.local_worker = self._local_worker()
        weights_ref = ray.put(weights)  # one copy in the object store, shared by all workers
        pending = [actor.sample.remote(weights_ref, num_steps) for actor in self.actors]
        rollouts = []
        for index, ref in enumerate(pending):
            while True:
                try:
                    rollouts.append(ray.get(ref))
                    break
                except WORKER_FAILURES as error:
                    self._count_restart(error)
                    ray.kill(self.actors[index])
                    self.actors[index] = self._actor(index)
                    ref = self.actors[index].sample.remote(weights_ref, num_steps)
        return rollouts

    def _count_restart(self, error: Exception) -> None:
        cause = getattr(error, "cause", None) or error  # a RayTaskError wraps the worker's own
        message = str(cause).splitlines()[0] if isinstance(cause, EnvError) else f"{type(cause).__name__}"
        if self.restarts >= self.max_restarts:
            raise WorkerFailure(
                f"rollout worker for env {self.env_id!r} failed {self.restarts + 1} times "
                f"(max_worker_restarts={self.max_restarts}); last failure: {message}"
            ) from None
        self.restarts += 1
        logger.warning(
            "replacing a rollout worker for env %r (restart %d): %s", self.env_id, self.restarts, message
        )

    def stop(self) -> None:
        if self.local_worker is not None:
            self.local_worker.close()
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
