"""Reading rlsweep's YAML files (experiments, best configs, `--set` values): YAML 1.2
numbers, and errors that name the file and the line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from rlsweep.trainables.config import ConfigError


class _Loader(yaml.SafeLoader):
    """PyYAML follows YAML 1.1, where `1e-3` is a string; YAML 1.2 and every RL config
    author read it as a float."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """The mapping a YAML file holds; any problem is a ConfigError naming `what`, the
    file and, for a syntax error, the line."""
    if not path.is_file():
        raise ConfigError(f"{what} {str(path)!r} does not exist")
    try:
        data = load_yaml(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{what} {str(path)!r} is not valid YAML{_location(error)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {str(path)!r} must hold a mapping of keys to values")
    return data


def _location(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    if mark is None:
        return f": {error}"
    where = f" at line {mark.line + 1}, column {mark.column + 1}: {getattr(error, 'problem', '')}"
    context, context_mark = getattr(error, "context", None), getattr(error, "context_mark", None)
    if context and context_mark is not None:
        where += f" ({context} at line {context_mark.line + 1})"
    return where
