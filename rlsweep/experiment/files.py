"""Experiment files: finding one (a path, or a shipped experiment by name), reading it with
`--set` overrides applied, and validating it into an `Experiment`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rlsweep.experiment.runtime_env import code_on_path, resolve_paths
from rlsweep.experiment.schema import Experiment
from rlsweep.experiment.space_check import sample_configs
from rlsweep.experiment.yaml_files import load_yaml, read_yaml_mapping
from rlsweep.trainables.config import ConfigError, build_config

PACKAGE_DIR = Path(__file__).resolve().parents[1]
"""The installed `rlsweep` package's folder."""


def shipped_experiments_dir() -> Path:
    """The repository's experiments/ folder: the shipped experiment files, one folder per
    kind of env (classic/, atari/, ...), names unique across them. A wheel installs it
    inside the package (as `rlsweep.experiments`, see pyproject.toml); an editable install
    or a source checkout has it beside the package."""
    installed = PACKAGE_DIR / "experiments"
    return installed if installed.is_dir() else PACKAGE_DIR.parent / "experiments"


def shipped_experiments() -> dict[str, Path]:
    """Every shipped experiment's file, by name."""
    return {path.stem: path for path in sorted(shipped_experiments_dir().rglob("*.yaml"))}


def list_experiments() -> list[str]:
    return sorted(shipped_experiments())


def resolve_experiment_path(name_or_path: str) -> Path:
    """A file path as given, or the name of a shipped experiment (with or without .yaml)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or os.sep in name_or_path:
        if not path.is_file():
            raise ConfigError(f"experiment file {name_or_path!r} does not exist")
        return path
    shipped = shipped_experiments()
    if name_or_path not in shipped:
        raise ConfigError(f"unknown experiment {name_or_path!r}; shipped experiments: {', '.join(shipped)}")
    return shipped[name_or_path]


def load_experiment(name_or_path: str, overrides: dict[str, Any] | None = None) -> Experiment:
    """Read, override and validate an experiment; every problem is a one-line ConfigError."""
    path = resolve_experiment_path(name_or_path)
    data = read_yaml_mapping(path, "experiment file")
    data.setdefault("name", path.stem)
    for dotted_key, value in (overrides or {}).items():
        set_dotted(data, dotted_key, value)
    if isinstance(data.get("runtime_env"), dict):
        data["runtime_env"] = resolve_paths(data["runtime_env"], path.parent)
    return experiment_from_dict(data)


def experiment_from_dict(data: dict[str, Any]) -> Experiment:
    """An experiment from a file's mapping, validated, its space sampled to prove it valid."""
    if data.get("envs") and "env" in data:
        raise ConfigError("experiment keys 'env' and 'envs' exclude each other; list every env under 'envs'")
    experiment = build_config(Experiment, data, label="experiment")
    with code_on_path(experiment.runtime_env):
        sample_configs(experiment)
    return experiment


def set_dotted(data: dict[str, Any], dotted_key: str, value: Any) -> None:
    """`set_dotted(d, "stop.timesteps_total", 5)` sets d["stop"]["timesteps_total"]."""
    *parents, leaf = dotted_key.split(".")
    node = data
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {dotted_key!r}: {part!r} is not a mapping")
        node = child
    node[leaf] = value


def parse_assignment(assignment: str) -> tuple[str, Any]:
    """'key=value' from the command line, the value parsed as YAML (numbers, lists, true)."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise ConfigError(f"expected key=value, got {assignment!r}")
    try:
        return key.strip(), load_yaml(raw)
    except Exception:
        return key.strip(), raw
