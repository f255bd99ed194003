"""The `scheduler` section of an experiment: which Tune scheduler, with which settings, validated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rlsweep.trainables.config import ConfigError, build_config, check_range


@dataclass
class AshaSpec:
    """Asynchronous Successive Halving: stop the worst trials at each rung."""

    type: Literal["asha"] = "asha"
    time_attr: str = "training_iteration"
    """Result key that measures a trial's progress (training_iteration or timesteps_total)."""
    grace_period: int = 5
    """Progress every trial gets before it can be stopped."""
    reduction_factor: float = 3.0
    """Only the top 1/reduction_factor of trials reach each next rung."""
    max_t: int = 1000
    """Progress at which any trial is stopped."""

    def validate(self) -> None:
        check_range("scheduler.grace_period", self.grace_period, 1, label="experiment")
        check_range(
            "scheduler.reduction_factor", self.reduction_factor, 1, low_inclusive=False, label="experiment"
        )
        check_range("scheduler.max_t", self.max_t, self.grace_period, label="experiment")


@dataclass
class PbtSpec:
    """Population Based Training: poor trials copy good ones' weights and perturb their
    hyperparameters every `perturbation_interval`."""

    type: Literal["pbt"] = "pbt"
    time_attr: str = "training_iteration"
    perturbation_interval: int = 5
    quantile_fraction: float = 0.25
    """Bottom fraction that exploits the top fraction."""
    resample_probability: float = 0.25
    """Chance a mutated value is resampled from its range instead of perturbed."""
    hyperparam_mutations: dict[str, Any] = field(default_factory=dict)
    """Config key -> list of values, or {low, high, log} for a continuous range."""

    def validate(self) -> None:
        check_range("scheduler.perturbation_interval", self.perturbation_interval, 1, label="experiment")
        check_range("scheduler.quantile_fraction", self.quantile_fraction, 0, 0.5, label="experiment")
        check_range("scheduler.resample_probability", self.resample_probability, 0, 1, label="experiment")
        if not self.hyperparam_mutations:
            raise ConfigError(
                "experiment key 'scheduler.hyperparam_mutations' must name at least one config key"
            )
        for key, spec in self.hyperparam_mutations.items():
            mutation_domain(key, spec)


@dataclass
class Pb2Spec:
    """Population Based Bandits: PBT whose new hyperparameters come from a Gaussian-process
    bandit fitted to the population's progress, within bounds read from the search space."""

    type: Literal["pb2"] = "pb2"
    time_attr: str = "training_iteration"
    perturbation_interval: int = 5
    quantile_fraction: float = 0.25
    """Bottom fraction that exploits the top fraction."""
    hyperparams: list[str] = field(default_factory=list)
    """Float config keys PB2 tunes; empty: every float key the search space varies."""

    def validate(self) -> None:
        check_range("scheduler.perturbation_interval", self.perturbation_interval, 1, label="experiment")
        check_range("scheduler.quantile_fraction", self.quantile_fraction, 0, 0.5, label="experiment")


@dataclass
class FifoSpec:
    """Run every trial to its stop condition."""

    type: Literal["fifo"] = "fifo"


SPECS = {"fifo": FifoSpec, "asha": AshaSpec, "pbt": PbtSpec, "pb2": Pb2Spec}

Bounds = dict[str, tuple[float, float]]
"""Float config key -> its (low, high) in the search space."""


def scheduler_spec(scheduler: dict[str, Any]) -> FifoSpec | AshaSpec | PbtSpec | Pb2Spec:
    if not isinstance(scheduler, dict):
        raise ConfigError(f"experiment key 'scheduler' must be a mapping with a 'type', got {scheduler!r}")
    kind = scheduler.get("type", "fifo")
    if kind not in SPECS:
        raise ConfigError(f"experiment key 'scheduler.type' must be one of {list(SPECS)}, got {kind!r}")
    return build_config(SPECS[kind], scheduler, label="experiment", prefix="scheduler.")


def check_scheduler(scheduler: dict[str, Any], config_keys: set[str], space_bounds: Bounds) -> None:
    """Validate a scheduler mapping; PBT may only mutate real config keys, PB2 only float
    keys the search space varies."""
    spec = scheduler_spec(scheduler)
    if isinstance(spec, PbtSpec):
        unknown = sorted(set(spec.hyperparam_mutations) - config_keys)
        if unknown:
            raise ConfigError(
                f"experiment key 'scheduler.hyperparam_mutations' names unknown config keys {unknown}"
            )
    if isinstance(spec, Pb2Spec):
        pb2_bounds(spec, space_bounds)


def pb2_bounds(spec: Pb2Spec, space_bounds: Bounds) -> Bounds:
    """The bounds PB2 searches within: the space's, for the keys the spec names (or all)."""
    if not space_bounds:
        raise ConfigError("scheduler type pb2 needs a search space that varies a float config key")
    unknown = sorted(set(spec.hyperparams) - set(space_bounds))
    if unknown:
        raise ConfigError(
            f"experiment key 'scheduler.hyperparams' names {unknown}; PB2 can tune the float keys "
            f"the search space varies: {sorted(space_bounds)}"
        )
    return {key: space_bounds[key] for key in spec.hyperparams or space_bounds}


def mutation_domain(key: str, spec: Any) -> Any:
    if isinstance(spec, list) and spec:
        return spec
    if isinstance(spec, dict) and {"low", "high"} <= set(spec) and set(spec) <= {"low", "high", "log"}:
        low, high = spec["low"], spec["high"]
        if not (isinstance(low, (int, float)) and isinstance(high, (int, float)) and 0 <= low < high):
            raise ConfigError(f"experiment key 'scheduler.hyperparam_mutations.{key}' needs 0 <= low < high")
        from ray import tune  # the schema is read (rlsweep best, ui) without Ray

        return tune.loguniform(low, high) if spec.get("log") and low > 0 else tune.uniform(low, high)
    raise ConfigError(
        f"experiment key 'scheduler.hyperparam_mutations.{key}' must be a list of values "
        "or a mapping {low, high, log}"
    )
