"""The `rlsweep` command line: sweep, train, check, test, best, evaluate, list, ui, dashboard, tensorboard.

parser.py           the commands and their help
options.py          the options several commands share, each defined once
run_commands.py     sweep, train, test, check: experiments through the pipeline
result_commands.py  best, evaluate, list, ui, dashboard, tensorboard: what runs left behind
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Iterator

from rlsweep.cli.parser import build_parser
from rlsweep.trainables.checkpoint import CheckpointError
from rlsweep.trainables.config import ConfigError

USER_ERRORS = (ConfigError, CheckpointError)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_process(verbose=args.verbose)
    try:
        with _current_folder_importable():
            return args.handler(args)
    except USER_ERRORS as error:
        return _fail(str(error), args.verbose)
    except KeyboardInterrupt:
        print("rlsweep: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        return _fail(f"{type(error).__name__}: {error}", args.verbose, unexpected=True)


def configure_process(verbose: bool) -> None:
    """The process-wide settings of a command-line run, all made here, once."""
    import optuna

    if not verbose:
        # Tune's INFO/WARNING chatter (snapshot timings, metric fetch retries) drowns the progress lines.
        logging.getLogger("ray.tune").setLevel(logging.ERROR)
    # Studies sampled to check a space and Optuna's per-trial INFO lines are not news.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Short CartPole iterations trigger Tune's snapshot-frequency warning without harm.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Our own progress lines replace Tune's console output engine (and its pointer to a
    # TensorBoard folder in Ray's temp dir, which is not where our event files are).
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # An unreachable MLflow server must fail in seconds, not after minutes of backoff.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


@contextlib.contextmanager
def _current_folder_importable() -> Iterator[None]:
    """ "my_envs:Maze" imports my_envs.py from the current folder, as `python -m` would (a
    console script's path starts at its own folder); a local Ray's workers get the folder
    too, since they start with the driver's path. Restored when the command ends."""
    folder = os.getcwd()
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        yield
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)


def _fail(message: str, verbose: bool, unexpected: bool = False) -> int:
    if verbose:
        traceback.print_exc()
    hint = "" if verbose or not unexpected else " (run with --verbose for the traceback)"
    print(f"rlsweep: error: {message}{hint}", file=sys.stderr)
    return 1 if unexpected else 2
