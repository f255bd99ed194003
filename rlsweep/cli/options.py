"""The options several commands share, each defined once, and what they turn into."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


class DeprecatedAlias(argparse.Action):
    """An option's old name: it still works, with one line saying the new one."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: Any, value: Any, option: Any = None
    ) -> None:
        new = "--" + self.dest.replace("_", "-")
        print(f"rlsweep: {option} is deprecated; use {new}", file=sys.stderr)
        setattr(namespace, self.dest, value)


def add_overrides(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help
    )


def add_address(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address", help="join this Ray cluster (default: $RAY_ADDRESS, else start Ray on this machine)"
    )


def add_mlflow(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mlflow-uri",
        help="MLflow tracking store, e.g. http://host:5000 (default: $MLFLOW_TRACKING_URI, else mlflow.db "
        "in the results folder)",
    )
    parser.add_argument("--no-mlflow", action="store_true", help="log to TensorBoard and local files only")


def add_runtime_env(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "your code on a cluster",
        "Ray ships these to every node; each trial and rollout worker imports from them "
        "(the experiment key runtime_env; these flags win over it).",
    )
    group.add_argument(
        "--working-dir",
        metavar="DIR",
        help="runtime_env.working_dir: a folder (your env module, say) every trial and worker runs in",
    )
    group.add_argument(
        "--py-module",
        dest="py_modules",
        action="append",
        metavar="PATH",
        help="runtime_env.py_modules: a package folder, .py file or wheel to ship (repeatable)",
    )


def add_storage(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage",
        metavar="URI",
        help="keep runs in remote storage (s3://bucket/prefix or any pyarrow filesystem URI): "
        "Tune's results and checkpoints, the run's files, MLflow's artifacts",
    )


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Where a command that runs an experiment runs it, with which code, tracked where."""
    add_address(parser)
    add_runtime_env(parser)
    add_mlflow(parser)


def set_values(args: argparse.Namespace) -> dict[str, Any]:
    """The --set KEY=VALUE assignments, values parsed as YAML."""
    from rlsweep.experiment.files import parse_assignment

    return dict(parse_assignment(assignment) for assignment in args.overrides)


def experiment_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """--set, --working-dir and --py-module as overrides of experiment keys."""
    return {**set_values(args), **runtime_env_overrides(args)}


def runtime_env_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """--working-dir and --py-module as experiment overrides, with paths from the current folder."""
    found: dict[str, Any] = {}
    if getattr(args, "working_dir", None):
        found["runtime_env.working_dir"] = str(Path(args.working_dir).expanduser().resolve())
    if getattr(args, "py_modules", None):
        found["runtime_env.py_modules"] = [str(Path(p).expanduser().resolve()) for p in args.py_modules]
    return found
