"""Tune's trial schedulers (ASHA, PBT, PB2) built from an experiment's `scheduler` section."""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining, TrialScheduler
from ray.tune.schedulers.pb2 import PB2

from rlsweep.experiment.schedulers import (
    AshaSpec,
    Bounds,
    Pb2Spec,
    PbtSpec,
    mutation_domain,
    pb2_bounds,
    scheduler_spec,
)


def build_scheduler(
    scheduler: dict[str, Any], metric: str, mode: str, space_bounds: Bounds
) -> TrialScheduler:
    spec = scheduler_spec(scheduler)
    if isinstance(spec, AshaSpec):
        return ASHAScheduler(
            time_attr=spec.time_attr,
            metric=metric,
            mode=mode,
            grace_period=spec.grace_period,
            reduction_factor=spec.reduction_factor,
            max_t=spec.max_t,
        )
    if isinstance(spec, PbtSpec):
        return PopulationBasedTraining(
            time_attr=spec.time_attr,
            metric=metric,
            mode=mode,
            perturbation_interval=spec.perturbation_interval,
            quantile_fraction=spec.quantile_fraction,
            resample_probability=spec.resample_probability,
            hyperparam_mutations={k: mutation_domain(k, v) for k, v in spec.hyperparam_mutations.items()},
        )
    if isinstance(spec, Pb2Spec):
        return PB2(
            time_attr=spec.time_attr,
            metric=metric,
            mode=mode,
            perturbation_interval=spec.perturbation_interval,
            quantile_fraction=spec.quantile_fraction,
            hyperparam_bounds={key: list(bounds) for key, bounds in pb2_bounds(spec, space_bounds).items()},
        )
    return FIFOScheduler()
