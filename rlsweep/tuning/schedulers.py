"""Tune's trial schedulers (ASHA, PBT, PB2) built from an experiment's `scheduler` section."""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining, TrialScheduler

from rlsweep.experiment.schedulers import (
    AshaSpec,
    Bounds,
    FifoSpec,
    PbtSpec,
    mutation_domain,
    pb2_bounds,
    scheduler_spec,
)


def build_scheduler(
    scheduler: dict[str, Any], metric: str, mode: str, space_bounds: Bounds
) -> TrialScheduler:
    """The Tune scheduler of an experiment's `scheduler` section, judging trials on `metric`."""
    spec = scheduler_spec(scheduler)
    if isinstance(spec, FifoSpec):
        return FIFOScheduler()
    judged = {"time_attr": spec.time_attr, "metric": metric, "mode": mode}
    if isinstance(spec, AshaSpec):
        return ASHAScheduler(
            **judged, grace_period=spec.grace_period, reduction_factor=spec.reduction_factor, max_t=spec.max_t
        )
    population = {
        "perturbation_interval": spec.perturbation_interval,
        "quantile_fraction": spec.quantile_fraction,
    }
    if isinstance(spec, PbtSpec):
        mutations = {key: mutation_domain(key, value) for key, value in spec.hyperparam_mutations.items()}
        return PopulationBasedTraining(
            **judged,
            **population,
            resample_probability=spec.resample_probability,
            hyperparam_mutations=mutations,
        )
    # Imported here: PB2 pulls in scikit-learn and scipy.stats, 64 MB a sweep without it need not hold.
    from ray.tune.schedulers.pb2 import PB2

    bounds = {key: list(bounds) for key, bounds in pb2_bounds(spec, space_bounds).items()}
    return PB2(**judged, **population, hyperparam_bounds=bounds)
