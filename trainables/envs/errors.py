"""What an env's own code raises, as one line that names the env (and the extra that
installs a missing dependency)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym

from rlsweep.trainables.config import ConfigError

EXTRAS = {"Box2D": "box2d", "mujoco": "mujoco", "ale_py": "atari"}
"""Modules that gymnasium's optional envs import, by the rlsweep extra that installs them."""

ENTRY_POINT_EXTRAS = {"gymnasium.envs.box2d": "box2d", "gymnasium.envs.mujoco": "mujoco", "ale_py": "atari"}
"""Env code by the extra its dependencies come from, when the missing module is not named."""


def run_env_code(label: str, doing: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the env's own code; what it raises becomes one line naming the env."""
    try:
        return function(*args, **kwargs)
    except ConfigError:
        raise
    except Exception as error:
        raise ConfigError(env_failure(label, f"in {doing}", error)) from None


def env_failure(label: str, where: str, error: BaseException) -> str:
    """The one line for an exception from env `label`'s code: a missing optional dependency
    names the extra to install; anything else names the exception and `where` it happened."""
    dependency = missing_dependency(label, error)
    if dependency is not None:
        return dependency
    return f"env {label!r} raised {type(error).__name__} {where}: {first_line(error)}"


def missing_dependency(label: str, error: BaseException) -> str | None:
    """ "env 'X' needs Box2D, which is not installed: pip install "rlsweep[box2d]"" when `error`
    (or what caused it) is a missing optional dependency; else None."""
    chain = []
    cause: BaseException | None = error
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    missing = next((e.name.split(".")[0] for e in chain if isinstance(e, ImportError) and e.name), None)
    if missing in EXTRAS:
        extra = EXTRAS[missing]
        return f'env {label!r} needs {missing}, which is not installed: pip install "rlsweep[{extra}]"'
    if not any(isinstance(e, gym.error.DependencyNotInstalled) for e in chain):
        return None
    entry_point = _entry_point_module(label)
    extra = next((x for prefix, x in ENTRY_POINT_EXTRAS.items() if entry_point.startswith(prefix)), None)
    if extra is not None:
        return f'env {label!r} needs a package that is not installed: pip install "rlsweep[{extra}]"'
    return f"env {label!r} needs a package that is not installed: {first_line(error)}"


def _entry_point_module(label: str) -> str:
    try:
        entry_point = gym.spec(label.rpartition(":")[2]).entry_point
    except Exception:
        return ""
    return entry_point.partition(":")[0] if isinstance(entry_point, str) else entry_point.__module__


def first_line(error: BaseException | str) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""
