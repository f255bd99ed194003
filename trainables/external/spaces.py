"""The spaces of an external env, as the config gives them, and observations and actions
as JSON carries them.

A space is given as a gymnasium space, a spec such as `{type: Box, low: -1, high: 1,
shape: [4]}` (Discrete, MultiDiscrete, MultiBinary, Dict, Tuple too), or found on a class
with `spaces_from: "module:Class"` (its `observation_space` and `action_space` attributes).
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym
import numpy as np

from rlsweep.trainables.config import ConfigError


def parse_space(spec: Any, key: str) -> gym.spaces.Space:
    """A gymnasium space from a space or a spec dict; a ConfigError naming `key` otherwise."""
    if isinstance(spec, gym.spaces.Space):
        return spec
    if not isinstance(spec, dict) or "type" not in spec:
        raise ConfigError(
            f"env_config {key!r} must be a gymnasium space or a dict with a 'type', got {spec!r}"
        )
    kind, rest = spec["type"], {k: v for k, v in spec.items() if k != "type"}
    try:
        if kind == "Box":
            shape = tuple(rest.pop("shape")) if "shape" in rest else None
            dtype = np.dtype(rest.pop("dtype", "float32"))
            low, high = (_bound(rest.pop(bound), dtype) for bound in ("low", "high"))
            return gym.spaces.Box(low, high, shape=shape, dtype=dtype, **rest)
        if kind == "Discrete":
            return gym.spaces.Discrete(int(rest.pop("n")), start=int(rest.pop("start", 0)), **rest)
        if kind == "MultiDiscrete":
            return gym.spaces.MultiDiscrete(rest.pop("nvec"), **rest)
        if kind == "MultiBinary":
            return gym.spaces.MultiBinary(rest.pop("n"), **rest)
        if kind == "Dict":
            spaces = rest.pop("spaces")
            return gym.spaces.Dict({name: parse_space(s, f"{key}.{name}") for name, s in spaces.items()})
        if kind == "Tuple":
            spaces = rest.pop("spaces")
            return gym.spaces.Tuple([parse_space(s, f"{key}[{i}]") for i, s in enumerate(spaces)])
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(
            f"env_config {key!r}: cannot build a {kind} space from {spec!r} ({error})"
        ) from None
    raise ConfigError(
        f"env_config {key!r}: unknown space type {kind!r}; use Box, Discrete, MultiDiscrete, "
        "MultiBinary, Dict or Tuple"
    )


def _bound(value: Any, dtype: np.dtype) -> Any:
    """A Box bound: a number for every dimension, or one per dimension."""
    array = np.asarray(value, dtype=dtype)
    return array.item() if array.ndim == 0 else array


def spaces_from(target: str) -> tuple[gym.spaces.Space, gym.spaces.Space]:
    """The `observation_space` and `action_space` of the class or object `module:Name`."""
    module_name, _, name = target.rpartition(":")
    if not module_name:
        raise ConfigError(f"env_config 'spaces_from' must be 'module:Name', got {target!r}")
    try:
        value = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"env_config 'spaces_from': cannot import {target!r} ({error})") from None
    try:
        return value.observation_space, value.action_space
    except AttributeError:
        raise ConfigError(
            f"env_config 'spaces_from': {target!r} has no observation_space and action_space attributes"
        ) from None


def space_spec(space: gym.spaces.Space) -> dict[str, Any]:
    """The spec dict of `space` (the inverse of `parse_space`), as the server tells clients."""
    if isinstance(space, gym.spaces.Box):
        return {
            "type": "Box",
            "low": space.low.tolist(),
            "high": space.high.tolist(),
            "shape": list(space.shape),
            "dtype": str(space.dtype),
        }
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist()}
    if isinstance(space, gym.spaces.MultiBinary):
        return {"type": "MultiBinary", "n": space.n}
    if isinstance(space, gym.spaces.Dict):
        return {"type": "Dict", "spaces": {name: space_spec(s) for name, s in space.spaces.items()}}
    if isinstance(space, gym.spaces.Tuple):
        return {"type": "Tuple", "spaces": [space_spec(s) for s in space.spaces]}
    raise ValueError(f"no JSON spec for {space}")


def from_json(space: gym.spaces.Space, value: Any, what: str = "observation") -> Any:
    """`value` (decoded JSON) as an element of `space`; a ValueError saying what does not fit."""
    if isinstance(space, gym.spaces.Dict):
        if not isinstance(value, dict) or set(value) != set(space.spaces):
            raise ValueError(f"{what} must be an object with keys {sorted(space.spaces)}")
        return {name: from_json(s, value[name], f"{what}.{name}") for name, s in space.spaces.items()}
    if isinstance(space, gym.spaces.Tuple):
        if not isinstance(value, list) or len(value) != len(space.spaces):
            raise ValueError(f"{what} must be a list of {len(space.spaces)} items")
        return tuple(
            from_json(s, v, f"{what}[{i}]") for i, (s, v) in enumerate(zip(space.spaces, value, strict=True))
        )
    if isinstance(space, gym.spaces.Discrete):
        if isinstance(value, bool) or not isinstance(value, int) or not space.contains(np.int64(value)):
            raise ValueError(f"{what} must be an integer in {space}, got {value!r}")
        return np.int64(value)
    try:
        array = np.asarray(value, dtype=space.dtype)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be numbers of shape {list(space.shape)}, got {value!r:.80}") from None
    if array.shape != space.shape:
        raise ValueError(f"{what} has shape {list(array.shape)}, expected {list(space.shape)}")
    return array


def to_json(value: Any) -> Any:
    """An action or observation as JSON values (numpy arrays and scalars to lists and numbers)."""
    if isinstance(value, dict):
        return {key: to_json(v) for key, v in value.items()}
    if isinstance(value, tuple):
        return [to_json(v) for v in value]
    return np.asarray(value).tolist()
