"""The Ray cluster a run uses: one started on this machine, or an existing one joined by address."""

from __future__ import annotations

import os

import ray

from rlsweep.experiments.experiment import Experiment


def connect_ray(address: str | None) -> None:
    """Join `address` (or RAY_ADDRESS) if given, else start a local Ray on this machine."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        # Our own single-user instance on this machine: no token authentication.
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(include_dashboard=False, log_to_driver=False)


def check_fits_cluster(experiment: Experiment, address: str | None) -> None:
    """Fail before Ray starts when a trial cannot fit this machine; on a cluster, right after joining."""
    if address or os.environ.get("RAY_ADDRESS") or ray.is_initialized():
        connect_ray(address)
        resources = ray.cluster_resources()
        experiment.check_resources(resources.get("CPU", 0), resources.get("GPU", 0))
    else:
        import torch

        experiment.check_resources(os.cpu_count() or 1, torch.cuda.device_count())
