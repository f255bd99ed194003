"""The `@search_space` decorator: a define-by-run function that Tune's OptunaSearch takes
as-is and experiments can narrow or partly fix."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import optuna

SampleFunction = Callable[[optuna.Trial], dict[str, Any]]


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
    ):
        self.sample = sample
        self.name = sample.__name__
        self.__doc__ = sample.__doc__
        self.params = dict(params or {})
        self.fixed_config = dict(fixed_config or {})

    def __call__(self, trial: Any) -> dict[str, Any]:
        return self.sample_config(trial)[0]

    def sample_config(self, trial: Any) -> tuple[dict[str, Any], set[str]]:
        """The config for `trial`, and the parameter names the space asked for."""
        narrowed = NarrowedTrial(getattr(trial, "ot_trial", trial), self.params, self.fixed_config)
        return {**self.sample(narrowed), **self.fixed_config}, narrowed.asked

    def narrowed(self, params: dict[str, Any], fixed_config: dict[str, Any]) -> SearchSpace:
        """This space with some parameters narrowed or fixed and some config keys set."""
        return SearchSpace(self.sample, {**self.params, **params}, {**self.fixed_config, **fixed_config})

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
