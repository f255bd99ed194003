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

from rlsweep.trainables.envs.names import EnvSource, EnvSpecifier, as_source
from rlsweep.trainables.models.policy import Policy
from rlsweep.trainables.sampling.rollout import Rollout
from rlsweep.trainables.sampling.rollout_worker import EnvError, RolloutWorker

logger = logging.getLogger(__name__)

WORKER_FAILURES = (EnvError, RayActorError, OutOfMemoryError, WorkerCrashedError)
"""A sampling failure a fresh worker may not repeat: its process died or its env failed."""


class WorkerFailure(RuntimeError):
    """Workers kept failing past `max_restarts`; the message carries the last failure."""


class WorkerGroup:
    """Creates, feeds, replaces and stops the samplers of one trial.

    Synchronous sampling sends every worker the learner's weights and waits for all their
    rollouts: the learner and the workers take turns, and a seed reproduces a trial exactly.
    Asynchronous sampling (actors only) keeps one request in flight per worker: a worker
    whose rollout arrives is at once sent the newest weights and samples its next rollout
    while the learner updates on this one. Rollouts are taken as they arrive, so a fast
    worker may contribute twice to one update; the only rollouts the learner waits for are
    those sampled with the weights before its current ones, which would otherwise be two
    versions old by the next update (so no rollout is ever more than one version behind).

    Under Tune each actor goes to its own bundle of the trial's placement group (bundle 0
    is the learner's), so a sweep never oversubscribes the CPUs it reserved, and a
    replacement takes the bundle of the worker it replaces.
    """

    def __init__(
        self,
        num_workers: int,
        env: EnvSource | EnvSpecifier,
        env_config: dict[str, Any],
        num_envs_per_worker: int,
        seeds: list[int],
        make_policy: Callable[[], Policy],
        max_restarts: int,
        asynchronous: bool = False,
        worker_class: type = RolloutWorker,
    ):
        self.env = as_source(env)
        self.env_id = self.env.label
        self.env_config = env_config
        self.num_envs_per_worker = num_envs_per_worker
        self.seeds = seeds
        self.make_policy = make_policy
        self.max_restarts = max_restarts
        self.num_workers = num_workers
        self.asynchronous = asynchronous and num_workers > 0
        self.worker_class = worker_class
        """What samples: `RolloutWorker`, or another experience source with its constructor
        and `sample` (`MultiAgentWorker`)."""
        self.restarts = 0
        self.placement_group = ray.util.get_current_placement_group() if num_workers else None
        self.local_worker = self._local_worker() if num_workers == 0 else None
        self.actors = [self._actor(index) for index in range(num_workers)]
        self.in_flight: dict[ray.ObjectRef, tuple[int, int]] = {}
        """Requested rollouts: (worker index, policy version) by result reference."""

    def _worker_seeds(self, index: int) -> list[int]:
        """Each seed's value for worker `index`: distinct per worker and per replacement, so
        a new worker does not replay its predecessor's episodes."""
        slot = index + self.restarts * max(1, self.num_workers)
        return [seed + slot * self.num_envs_per_worker for seed in self.seeds]

    def _local_worker(self) -> RolloutWorker:
        return self.worker_class(
            self.env, self.env_config, self.num_envs_per_worker, self._worker_seeds(0), self.make_policy
        )

    def _actor(self, index: int) -> ray.actor.ActorHandle:
        strategy = None
        if self.placement_group is not None:
            strategy = PlacementGroupSchedulingStrategy(
                placement_group=self.placement_group, placement_group_bundle_index=index + 1
            )
        return (
            ray.remote(self.worker_class)
            .options(num_cpus=1, scheduling_strategy=strategy)
            .remote(
                self.env,
                self.env_config,
                self.num_envs_per_worker,
                self._worker_seeds(index),
                self.make_policy,
                index,
                num_workers=self.num_workers,
            )
        )

    def sample(self, weights: dict[str, Any], num_steps: int, policy_version: int = 0) -> list[Rollout]:
        """Rollouts of `num_steps` steps per env for the learner's next update, whose weights
        (after `policy_version` updates) are `weights`: one per worker when synchronous (in
        worker order), at least that many when asynchronous (in arrival order)."""
        if self.local_worker is not None:
            while True:
                try:
                    return [self.local_worker.sample(weights, num_steps, policy_version)]
                except EnvError as error:
                    self._count_restart(error)
                    self.local_worker.close()
                    self.local_worker = self._local_worker()
        weights_ref = ray.put(weights)  # one copy in the object store, shared by all workers
        if not self.asynchronous:
            for index in range(self.num_workers):
                self._request(index, weights_ref, num_steps, policy_version)
            rollouts = [self._next_rollout(weights_ref, num_steps, policy_version) for _ in self.actors]
            return sorted(rollouts, key=lambda rollout: rollout.worker)
        if not self.in_flight:  # the first update: nothing was requested yet
            for index in range(self.num_workers):
                self._request(index, weights_ref, num_steps, policy_version)
        rollouts = []
        while len(rollouts) < self.num_workers or self._oldest_request() < policy_version:
            rollout = self._next_rollout(weights_ref, num_steps, policy_version)
            rollouts.append(rollout)
            self._request(rollout.worker, weights_ref, num_steps, policy_version)
        return rollouts

    def _oldest_request(self) -> int:
        """The oldest policy version a rollout in flight is being sampled with."""
        return min(version for _, version in self.in_flight.values())

    def _request(self, index: int, weights_ref: ray.ObjectRef, num_steps: int, policy_version: int) -> None:
        ref = self.actors[index].sample.remote(weights_ref, num_steps, policy_version)
        self.in_flight[ref] = (index, policy_version)

    def _next_rollout(self, weights_ref: ray.ObjectRef, num_steps: int, policy_version: int) -> Rollout:
        """The first requested rollout to arrive; a worker that failed is replaced and asked
        again, with the newest weights."""
        while True:
            (ref,), _ = ray.wait(list(self.in_flight), num_returns=1)
            index, _ = self.in_flight.pop(ref)
            try:
                return ray.get(ref)
            except WORKER_FAILURES as error:
                self._count_restart(error)
                ray.kill(self.actors[index])
                self.actors[index] = self._actor(index)
                self._request(index, weights_ref, num_steps, policy_version)

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
        # Closing first lets workers stop what they started (external simulators) before
        # their processes go; a worker that does not answer in time is killed anyway.
        closing = [actor.close.remote() for actor in self.actors]
        if closing:  # ray.wait would start a Ray of its own in a process without one
            ray.wait(closing, num_returns=len(closing), timeout=20)
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
        self.in_flight.clear()
