"""Typed, validated algorithm configs built from the plain dicts Tune passes around."""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import types
import typing
from typing import Any, TypeVar

ConfigT = TypeVar("ConfigT")


class ConfigError(ValueError):
    """A config value a user must fix; the message names the key and what is allowed."""


def build_config(
    config_cls: type[ConfigT], values: dict[str, Any], label: str = "config", prefix: str = ""
) -> ConfigT:
    """Turn a dict into the dataclass `config_cls`, rejecting unknown keys and wrong types,
    then run its `validate()` if it has one.

    Keys starting with "__" are Tune's own bookkeeping and are ignored. `label` and
    `prefix` name keys in messages ("config key 'lr'", "experiment key 'stop.target'").
    """
    if not isinstance(values, dict):
        raise ConfigError(f"{label} must be a mapping of keys to values, got {values!r}")
    if hasattr(config_cls, "nest_keys"):  # dotted keys a search space sets ("policies.<id>.lr")
        values = config_cls.nest_keys(values)
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    hints = typing.get_type_hints(config_cls)
    kwargs = {}
    for key, value in values.items():
        if key.startswith("__"):
            continue
        if key not in fields:
            raise ConfigError(f"unknown {label} key {prefix + key!r}{did_you_mean(key, fields)}")
        kwargs[key] = _coerce(prefix + key, value, hints[key], label)
    config = config_cls(**kwargs)
    if hasattr(config, "validate"):
        config.validate()
    return config


def did_you_mean(name: str, choices: typing.Iterable[str]) -> str:
    """ " (did you mean 'x'?)" for the closest of `choices`, else ""; ends an error message."""
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _coerce(key: str, value: Any, annotation: Any, label: str) -> Any:
    """Check `value` against a field's annotation, converting lossless cases (int to float, list to tuple)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(key, value, arg, label)
            except ConfigError as error:
                errors.append(error)
        raise errors[-1]  # the last alternative names the most general form (str | Callable)
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{label} key {key!r} must be one of {list(args)}, got {value!r}")
        return value
    if origin is collections.abc.Callable:
        if not callable(value):
            raise ConfigError(f"{label} key {key!r} must be a string or a class or function, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{label} key {key!r} must be a list, got {value!r}")
        return tuple(_coerce(key, item, args[0], label) for item in value)
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{label} key {key!r} must be a number, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        ):
            raise ConfigError(f"{label} key {key!r} must be an integer, got {value!r}")
        return int(value)
    if annotation is bool and not isinstance(value, bool):
        raise ConfigError(f"{label} key {key!r} must be true or false, got {value!r}")
    if dataclasses.is_dataclass(annotation):
        return build_config(annotation, value if value is not None else {}, label, f"{key}.")
    if origin is dict and not isinstance(value, dict):
        raise ConfigError(f"{label} key {key!r} must be a mapping, got {value!r}")
    if annotation is str and not isinstance(value, str):
        raise ConfigError(f"{label} key {key!r} must be a string, got {value!r}")
    return value


def check_range(
    key: str,
    value: float | None,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    label: str = "config",
) -> None:
    """Raise a ConfigError naming `key` unless `value` lies in the given interval (None: unbounded)."""
    if value is None:
        return
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    if too_low or too_high:
        left = "-inf" if low is None else f"{low:g}"
        right = "inf" if high is None else f"{high:g}"
        opening = "[" if low_inclusive and low is not None else "("
        closing = "]" if high_inclusive and high is not None else ")"
        interval = f"{opening}{left}, {right}{closing}"
        raise ConfigError(f"{label} key {key!r} must be in {interval}, got {value!r}")
