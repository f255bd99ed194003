"""A trial's rollout workers: Ray actors placed in the trial's placement group, or one
in-process worker when `num_workers` is 0."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ray
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from trainables.rollout_worker import Rollout, RolloutWorker, SamplingPolicy


class WorkerGroup:
    """Creates, feeds and stops the samplers of one trial.

    Under Tune each actor goes to its own bundle of the trial's placement group (bundle 0
    is the learner's), so a sweep never oversubscribes the CPUs it reserved.
    """

    def __init__(
        self,
        num_workers: int,
        env_id: str,
        env_config: dict[str, Any],
        num_envs_per_worker: int,
        seed: int,
        make_policy: Callable[[], SamplingPolicy],
    ):
        self.local_worker: RolloutWorker | None = None
        self.actors: list[ray.actor.ActorHandle] = []
        if num_workers == 0:
            self.local_worker = RolloutWorker(env_id, env_config, num_envs_per_worker, seed, make_policy)
            return
        placement_group = ray.util.get_current_placement_group()
        remote_worker = ray.remote(RolloutWorker)
        for index in range(num_workers):
            strategy = None
            if placement_group is not None:
                strategy = PlacementGroupSchedulingStrategy(
                    placement_group=placement_group, placement_group_bundle_index=index + 1
                )
            worker_seed = seed + index * num_envs_per_worker
            self.actors.append(
                remote_worker.options(num_cpus=1, scheduling_strategy=strategy).remote(
                    env_id, env_config, num_envs_per_worker, worker_seed, make_policy
                )
            )

    def sample(self, weights: dict[str, Any], num_steps: int) -> list[Rollout]:
        """One rollout per worker, sampled in parallel with the given weights."""
        if self.local_worker is not None:
            return [self.local_worker.sample(weights, num_steps)]
        weights_ref = ray.put(weights)  # one copy in the object store, shared by all workers
        return ray.get([actor.sample.remote(weights_ref, num_steps) for actor in self.actors])

    def stop(self) -> None:
        if self.local_worker is not None:
            self.local_worker.close()
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
