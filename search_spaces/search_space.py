"""The `@search_space` decorator: a define-by-run function that Tune's OptunaSearch takes
as-is and experiments can narrow or partly fix."""

from __future__ import annotations

import importlib
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import optuna

from rlsweep.trainables.config import ConfigError

SampleFunction = Callable[[optuna.Trial], dict[str, Any]]
InverseFunction = Callable[[dict[str, Any]], dict[str, Any]]
"""Config keys a space derives -> the Optuna params it derives them from."""


class NarrowedTrial:
    """An Optuna trial seen through an experiment's overrides.

    `params` maps a space's parameter names to a fixed value, to {"low": .., "high": ..}
    (either may be omitted) for a numeric parameter, or to {"choices": [...]} for a
    categorical one. `fixed_config` holds config keys the experiment sets outright: a
    parameter named like one returns that value unsampled, so a space computing derived
    values (the minibatch size from num_envs_per_worker) sees what the trial will use.
    """

    def __init__(self, trial: optuna.Trial, params: dict[str, Any], fixed_config: dict[str, Any]):
        self.trial = trial
        self.params = params
        self.fixed_config = fixed_config
        self.asked: set[str] = set()
        """Every parameter name the space asked for, sampled or fixed."""

    def _fixed(self, name: str) -> tuple[bool, Any]:
        self.asked.add(name)
        if name in self.fixed_config:
            return True, self.fixed_config[name]
        override = self.params.get(name)
        if override is not None and not isinstance(override, dict):
            return True, override
        return False, None

    def _bounds(self, name: str, low: float, high: float) -> tuple[Any, Any]:
        override = self.params.get(name, {})
        return override.get("low", low), override.get("high", high)

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        is_fixed, value = self._fixed(name)
        if is_fixed:
            return value
        return self.trial.suggest_float(name, *self._bounds(name, low, high), step=step, log=log)

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        is_fixed, value = self._fixed(name)
        if is_fixed:
            return value
        return self.trial.suggest_int(name, *self._bounds(name, low, high), step=step, log=log)

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        is_fixed, value = self._fixed(name)
        if is_fixed:
            return value
        return self.trial.suggest_categorical(name, self.params.get(name, {}).get("choices", choices))

    def __getattr__(self, name: str) -> Any:
        # Everything else (number, set_user_attr, ...) is the underlying trial's.
        return getattr(self.trial, name)


class SearchSpace:
    """A sampling function plus an experiment's narrowing; call it with an Optuna trial.

    Ray's OptunaSearch wraps the trial in a proxy that copies every suggested value into
    the trial config. Spaces suggest helper parameters that are not config keys
    (`one_minus_gamma`, `num_minibatches`), so a SearchSpace samples from the underlying
    Optuna trial and returns the config itself: the function's result overlaid with the
    experiment's fixed config.
    """

    def __init__(
        self,
        sample: SampleFunction,
        params: dict[str, Any] | None = None,
        fixed_config: dict[str, Any] | None = None,
        invert: InverseFunction | None = None,
    ):
        self.sample = sample
        self.name = sample.__name__
        self.__doc__ = sample.__doc__
        self.params = dict(params or {})
        self.fixed_config = dict(fixed_config or {})
        self.invert = invert

    def __call__(self, trial: Any) -> dict[str, Any]:
        return self.sample_config(trial)[0]

    def sample_config(self, trial: Any) -> tuple[dict[str, Any], set[str]]:
        """The config for `trial`, and the parameter names the space asked for."""
        narrowed = NarrowedTrial(getattr(trial, "ot_trial", trial), self.params, self.fixed_config)
        return {**self.sample(narrowed), **self.fixed_config}, narrowed.asked

    def narrowed(self, params: dict[str, Any], fixed_config: dict[str, Any]) -> SearchSpace:
        """This space with some parameters narrowed or fixed and some config keys set."""
        return SearchSpace(
            self.sample, {**self.params, **params}, {**self.fixed_config, **fixed_config}, self.invert
        )

    def inverse(self, invert: InverseFunction) -> InverseFunction:
        """Decorate the function that finds the params behind the config keys this space
        derives (`gamma` from `one_minus_gamma`); `params_for` needs it for those keys."""
        self.invert = invert
        return invert

    def params_for(self, point: dict[str, Any]) -> dict[str, Any]:
        """The Optuna params under which this space samples `point`'s config keys.

        A warm-start point is written as config keys, but a define-by-run space suggests
        params (`one_minus_gamma`, `net_arch`); Optuna must be given those, so the study
        records the point as a trial its sampler learns from. Keys the point leaves out are
        sampled. A point this space cannot produce is a ConfigError naming the key.
        """
        fixed = sorted(set(point) & set(self.fixed_config))
        if fixed:
            raise ConfigError(f"sets {fixed}, which the experiment fixes for every trial")
        params = dict(point)
        if self.invert is not None:
            derived = self.invert({**self.fixed_config, **point})
            params.update({name: value for name, value in derived.items() if value is not None})
        study = _scratch_study()
        study.enqueue_trial(params)
        trial = study.ask()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", UserWarning)  # Optuna warns of a value out of range
                config, _ = self.sample_config(trial)
        except (ValueError, UserWarning) as error:
            raise ConfigError(
                f"is outside search space {self.name!r} as the experiment narrows it: {error}"
            ) from None
        for key, value in point.items():
            if key not in config or not _same(config[key], value):
                raise ConfigError(
                    f"sets {key}={value!r}, which search space {self.name!r} cannot produce "
                    f"(it gives {config.get(key)!r} for those params)"
                )
        return {name: value for name, value in trial.params.items() if name in params}

    def config_bounds(self) -> dict[str, tuple[float, float]]:
        """Each float config key the space varies, with its range: the space sampled with
        every numeric param at its low end, then at its high end (a derived key such as
        `gamma = 1 - one_minus_gamma` takes its bounds from its param's)."""
        trial = _scratch_study().ask()
        self.sample_config(trial)
        corners = []
        for end in ("low", "high"):
            params = {
                name: getattr(dist, end) if hasattr(dist, end) else dist.choices[0]
                for name, dist in trial.distributions.items()
            }
            corners.append(self.sample_config(optuna.trial.FixedTrial(params))[0])
        low, high = corners
        return {
            key: (min(low[key], high[key]), max(low[key], high[key]))
            for key in low
            if isinstance(low[key], float) and low[key] != high[key]
        }

    def __reduce__(self) -> tuple[Any, ...]:
        # The module attribute is this decorated object, not the raw function, so pickle
        # (which Tune uses to save the searcher for resuming) stores a reference by name.
        return _load_space, (self.sample.__module__, self.name, self.params, self.fixed_config)

    def __repr__(self) -> str:
        return f"SearchSpace({self.name!r}, params={self.params}, fixed_config={self.fixed_config})"


def search_space(sample: SampleFunction) -> SearchSpace:
    """Decorate `def algo(trial) -> dict` to make it a SearchSpace."""
    return SearchSpace(sample)


def _load_space(module: str, name: str, params: dict[str, Any], fixed_config: dict[str, Any]) -> SearchSpace:
    space: SearchSpace = getattr(importlib.import_module(module), name)
    return space.narrowed(params, fixed_config)


def named_choice(choices: dict[str, Any], value: Any) -> str | None:
    """The name under which `choices` holds `value` (a network size as a list or tuple)."""
    return next((name for name, choice in choices.items() if _same(choice, value)), None)


def _scratch_study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))


def _same(produced: Any, wanted: Any) -> bool:
    """Config values equal as a user means it: lists are tuples, floats up to rounding."""
    if isinstance(produced, (list, tuple)) and isinstance(wanted, (list, tuple)):
        return list(produced) == list(wanted)
    if isinstance(produced, float) and isinstance(wanted, (int, float)) and not isinstance(wanted, bool):
        return math.isclose(produced, wanted, rel_tol=1e-9, abs_tol=1e-12)
    return bool(produced == wanted)
