"""User code on a cluster: the Ray `runtime_env` that ships an experiment's own modules (a
custom env, say) to every node, and puts the same code on this process's path for the checks
that run before Ray starts.

An experiment's `runtime_env` is Ray's (https://docs.ray.io/en/latest/ray-core/handling-dependencies.html):
`working_dir` (a folder every trial and worker process runs in and imports from) and
`py_modules` (folders, .py files or wheels to import), plus any other field Ray knows
(`env_vars`, `pip`, ...). Local paths in an experiment file are relative to the file's folder.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rlsweep.trainables.config import ConfigError, did_you_mean


def is_uri(location: str) -> bool:
    """A remote package ("s3://...", "gcs://...", "https://....zip"), not a local path."""
    return "://" in location


def resolve_paths(runtime_env: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """`runtime_env` with its local code paths made absolute, relative ones from `base_dir`."""
    resolved = dict(runtime_env)

    def absolute(location: Any) -> Any:
        if not isinstance(location, str) or is_uri(location):
            return location
        return str((base_dir / Path(location).expanduser()).resolve())

    if "working_dir" in resolved:
        resolved["working_dir"] = absolute(resolved["working_dir"])
    if isinstance(resolved.get("py_modules"), list):
        resolved["py_modules"] = [absolute(module) for module in resolved["py_modules"]]
    return resolved


def check_runtime_env(runtime_env: dict[str, Any]) -> None:
    """A ConfigError naming the field when Ray would reject `runtime_env`; checked without Ray."""
    from ray.runtime_env import RuntimeEnv

    public_fields = {name for name in RuntimeEnv.known_fields if not name.startswith("_")}
    for key in runtime_env:
        if key not in RuntimeEnv.known_fields:
            raise ConfigError(
                f"unknown experiment key 'runtime_env.{key}'{did_you_mean(key, public_fields)}; "
                f"Ray's runtime_env fields: {', '.join(sorted(public_fields))}"
            )
    key = "experiment key 'runtime_env"
    working_dir = runtime_env.get("working_dir")
    if working_dir is not None:
        if not isinstance(working_dir, str):
            raise ConfigError(f"{key}.working_dir' must be a path, got {working_dir!r}")
        if not is_uri(working_dir) and not Path(working_dir).is_dir():
            raise ConfigError(f"{key}.working_dir': folder {working_dir!r} does not exist")
    py_modules = runtime_env.get("py_modules")
    if py_modules is not None:
        if not isinstance(py_modules, list) or not all(isinstance(m, str) for m in py_modules):
            raise ConfigError(f"{key}.py_modules' must be a list of paths, got {py_modules!r}")
        for module in py_modules:
            if not is_uri(module) and not Path(module).exists():
                raise ConfigError(f"{key}.py_modules': {module!r} does not exist")
    try:
        RuntimeEnv(**runtime_env)
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"{key}' is not a valid Ray runtime_env: {reason}") from None


def local_import_paths(runtime_env: dict[str, Any]) -> list[str]:
    """The sys.path entries that import this runtime_env's local code in this process, as Ray
    imports it in trial and worker processes: the working_dir itself, a py_modules folder or
    .py file from its parent folder, a wheel from the wheel."""
    paths = []
    working_dir = runtime_env.get("working_dir")
    if isinstance(working_dir, str) and not is_uri(working_dir):
        paths.append(working_dir)
    for module in runtime_env.get("py_modules") or []:
        if isinstance(module, str) and not is_uri(module):
            path = Path(module)
            paths.append(str(path if path.suffix == ".whl" else path.parent))
    return paths


@contextlib.contextmanager
def code_on_path(runtime_env: dict[str, Any]) -> Iterator[None]:
    """Import the runtime_env's local code in this process while the context lasts.

    The driver resolves and checks the env before Ray starts; trial and worker processes
    import the same code from the copy Ray ships. Only those checks need it here, so
    sys.path is restored afterwards.
    """
    added = [path for path in local_import_paths(runtime_env) if path not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for path in added:
            if path in sys.path:
                sys.path.remove(path)
