"""The Ray cluster a run uses: one started on this machine, or an existing one joined by address."""

from __future__ import annotations

import logging
import os
from typing import Any

import ray

from rlsweep.experiment.schema import Experiment

logger = logging.getLogger(__name__)

LOCAL_OBJECT_STORE_BYTES = 512 * 2**20
"""The object store of a Ray started here. Ray's default, 30% of the machine's memory, is
sized for datasets; a sweep moves weights and rollouts (an Atari rollout is ~30 MB), and
Ray spills to disk past the limit, so a larger store only reserves memory a laptop needs."""


def connect_ray(address: str | None, runtime_env: dict[str, Any] | None = None) -> None:
    """Join `address` (or RAY_ADDRESS) if given, else start a local Ray on this machine.

    `runtime_env` becomes the job's: Ray ships its code to every node, and every trial and
    rollout worker process (all are actors of this job) runs with it.
    """
    if ray.is_initialized():
        if runtime_env:
            logger.warning(
                "Ray was already started in this process, so the experiment's runtime_env is not "
                "applied; pass it to ray.init instead"
            )
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False, runtime_env=runtime_env or None)
    else:
        # Our own single-user instance on this machine: no token authentication.
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            runtime_env=runtime_env or None,
        )


def check_fits_cluster(experiment: Experiment, address: str | None) -> None:
    """Fail before Ray starts when a trial cannot fit this machine; on a cluster, right after joining."""
    if address or os.environ.get("RAY_ADDRESS") or ray.is_initialized():
        connect_ray(address, experiment.runtime_env)
        resources = ray.cluster_resources()
        experiment.check_resources(resources.get("CPU", 0), resources.get("GPU", 0))
    else:
        import torch

        experiment.check_resources(os.cpu_count() or 1, torch.cuda.device_count())
