"""The `rlsweep` command line: sweep, train, best, list."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import yaml

from rlsweep.trainables.checkpoint import CheckpointError
from rlsweep.trainables.config import ConfigError

USER_ERRORS = (ConfigError, CheckpointError)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.verbose:
        # Tune's INFO/WARNING chatter (snapshot timings, metric fetch retries) drowns the progress lines.
        logging.getLogger("ray.tune").setLevel(logging.ERROR)
    # Short CartPole iterations trigger Tune's snapshot-frequency warning without harm.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    try:
        return args.handler(args)
    except USER_ERRORS as error:
        return _fail(str(error), args.verbose)
    except KeyboardInterrupt:
        print("rlsweep: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        return _fail(f"{type(error).__name__}: {error}", args.verbose, unexpected=True)


def _fail(message: str, verbose: bool, unexpected: bool = False) -> int:
    if verbose:
        traceback.print_exc()
    hint = "" if verbose or not unexpected else " (run with --verbose for the traceback)"
    print(f"rlsweep: error: {message}{hint}", file=sys.stderr)
    return 1 if unexpected else 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlsweep",
        description="Hyperparameter sweeps for reinforcement learning on Ray Tune, driven by Optuna.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="full tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sweep = commands.add_parser("sweep", help="run an experiment's hyperparameter sweep")
    sweep.add_argument(
        "experiment", help="experiment file, or the name of a shipped one (see `rlsweep list`)"
    )
    sweep.add_argument("--num-samples", type=int, help="trials in the sweep")
    sweep.add_argument("--max-concurrent", type=int, help="trials running at once")
    sweep.add_argument("--results-dir", help="where sweeps are written (default: the experiment's)")
    sweep.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an experiment key, dotted for nesting (stop.timesteps_total=50000, config.lr=1e-3)",
    )
    sweep.add_argument("--resume", action="store_true", help="continue the latest interrupted sweep")
    _add_address(sweep)
    _add_mlflow(sweep)
    sweep.set_defaults(handler=cmd_sweep)

    train = commands.add_parser("train", help="train one trial with a fixed config")
    train.add_argument("--algo", help="algorithm (default: the config file's, else PPO)")
    train.add_argument("--env", help="gymnasium env id (default: the config file's, else CartPole-v1)")
    train.add_argument("--config", help="config as a JSON object")
    train.add_argument(
        "--config-file", help="YAML with algorithm, env and config (e.g. `rlsweep best` output)"
    )
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    train.add_argument(
        "--restore",
        metavar="CHECKPOINT",
        help="continue from an rlsweep checkpoint (its algorithm and config)",
    )
    train.add_argument("--timesteps", type=int, default=100_000, help="env steps to train (default 100000)")
    train.add_argument("--time-s", type=float, help="stop after this many seconds")
    train.add_argument("--checkpoint-freq", type=int, default=10, help="checkpoint every N iterations")
    train.add_argument("--results-dir", default="results", help="default: results")
    _add_address(train)
    _add_mlflow(train)
    train.set_defaults(handler=cmd_train)

    evaluate = commands.add_parser(
        "evaluate", help="run a checkpoint's policy deterministically; no Ray needed"
    )
    evaluate.add_argument("checkpoint", help="a checkpoint folder written by a sweep or `rlsweep train`")
    evaluate.add_argument("--episodes", type=int, default=10, help="episodes to run (default 10)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the evaluation envs")
    evaluate.set_defaults(handler=cmd_evaluate)

    best = commands.add_parser("best", help="print and save the best config of a finished sweep")
    best.add_argument("results_dir", help="a sweep folder, or an experiment folder (its latest sweep)")
    best.add_argument("--output", help=f"where to write the config (default: SWEEP/{'best_config.yaml'})")
    best.set_defaults(handler=cmd_best)

    listing = commands.add_parser("list", help="algorithms, search spaces and shipped experiments")
    listing.set_defaults(handler=cmd_list)

    ui = commands.add_parser("ui", help="serve the MLflow UI on the sweeps' tracking store")
    ui.add_argument("--results-dir", default="results", help="whose mlflow.db to open (default: results)")
    ui.add_argument(
        "--mlflow-uri", help="another tracking store (default: $MLFLOW_TRACKING_URI, else RESULTS/mlflow.db)"
    )
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(handler=cmd_ui)

    board = commands.add_parser("tensorboard", help="serve TensorBoard on the latest sweep")
    board.add_argument(
        "results_dir", nargs="?", default="results", help="results, an experiment or a sweep folder"
    )
    board.add_argument("--port", type=int, default=6006)
    board.set_defaults(handler=cmd_tensorboard)
    return parser


def _add_address(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address", help="join this Ray cluster (default: $RAY_ADDRESS, else start Ray on this machine)"
    )


def _add_mlflow(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mlflow-uri",
        help="MLflow tracking store, e.g. http://host:5000 (default: $MLFLOW_TRACKING_URI, else mlflow.db "
        "in the results folder)",
    )
    parser.add_argument("--no-mlflow", action="store_true", help="log to TensorBoard and local files only")


def _parse_overrides(assignments: list[str]) -> dict[str, Any]:
    from rlsweep.experiments.experiment import parse_assignment

    return dict(parse_assignment(a) for a in assignments)


def cmd_sweep(args: argparse.Namespace) -> int:
    from rlsweep.experiments.experiment import load_experiment
    from rlsweep.experiments.runner import run_sweep

    overrides = _parse_overrides(args.overrides)
    for key, value in (
        ("num_samples", args.num_samples),
        ("max_concurrent_trials", args.max_concurrent),
        ("results_dir", args.results_dir),
    ):
        if value is not None:
            overrides[key] = value
    experiment = load_experiment(args.experiment, overrides)
    # Our own progress lines replace Tune's console output engine (and its pointer to a
    # TensorBoard folder in Ray's temp dir, which is not where our event files are).
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    started = time.perf_counter()
    outcome = run_sweep(
        experiment,
        resume=args.resume,
        address=args.address,
        mlflow_uri=args.mlflow_uri,
        track_mlflow=not args.no_mlflow,
    )
    print_sweep_summary(experiment, outcome, time.perf_counter() - started)
    if outcome.interrupted:
        resume = f"rlsweep sweep {args.experiment} --resume"
        if args.results_dir:
            resume += f" --results-dir {args.results_dir}"
        print(f"Sweep interrupted; finished trials are kept. Continue it with: {resume}")
        return 130
    return 0 if outcome.best is not None else 1


def print_sweep_summary(experiment: Any, outcome: Any, elapsed_s: float) -> None:
    from rlsweep.experiments.runner import STUDY_FILE, build_stopper

    stopper = build_stopper(experiment)
    results = list(outcome.results)
    errored = [r for r in results if r.error]
    early = [r for r in results if not r.error and r.metrics and not stopper("", r.metrics)]
    print()
    finished = len(results) - len(errored) - len(early)
    early_label = "stopped early or interrupted" if outcome.interrupted else "stopped early by the scheduler"
    print(
        f"Sweep {experiment.name!r}: {len(results)} trials ({finished} ran to a stop condition, "
        f"{len(early)} {early_label}, {len(errored)} failed) in {elapsed_s:.0f} s"
    )
    if outcome.best is None:
        print(f"No trial reported {experiment.metric!r}; nothing to recommend.")
    else:
        best = outcome.best
        print(f"Best trial:   {Path(best.path).name}")
        print(f"Best score:   {experiment.metric} = {best.metrics[experiment.metric]:.2f}")
        print("Best config:")
        document = yaml.safe_load(outcome.best_config_file.read_text())
        for line in yaml.safe_dump(document["config"], sort_keys=True).splitlines():
            print(f"  {line}")
        print(f"Best config file: {outcome.best_config_file}")
        print(f"  retrain it:     rlsweep train --config-file {outcome.best_config_file}")
        if document.get("checkpoint"):
            print(f"Best checkpoint:  {document['checkpoint']}")
    print(f"Results:      {outcome.sweep_dir}")
    print(f"Optuna study: sqlite:///{outcome.sweep_dir / STUDY_FILE}  (optuna-dashboard can open it)")
    print(f"TensorBoard:  rlsweep tensorboard {outcome.sweep_dir}")
    if outcome.mlflow_uri:
        print(f"MLflow:       {outcome.mlflow_uri}  (experiment {experiment.name!r}; rlsweep ui to browse)")


def cmd_train(args: argparse.Namespace) -> int:
    from ray import tune

    from rlsweep.experiments.mlflow_tracking import (
        MLflowTrialLogger,
        Tracking,
        default_tracking_uri,
        find_trial_run,
    )
    from rlsweep.experiments.runner import connect_ray
    from rlsweep.experiments.tensorboard_logging import TensorBoardLogger
    from rlsweep.trainables import get_algorithm
    from rlsweep.trainables.checkpoint import read_checkpoint
    from rlsweep.trainables.config import build_config

    document: dict[str, Any] = {}
    if args.config_file:
        document = _read_config_file(args.config_file)
    elif args.restore:
        document = read_checkpoint(args.restore)
    algorithm = get_algorithm(args.algo or document.get("algorithm", "PPO"))
    config = dict(document.get("config") or {})
    config["env"] = args.env or document.get("env") or config.get("env", "CartPole-v1")
    if args.config:
        try:
            extra = json.loads(args.config)
        except json.JSONDecodeError as error:
            raise ConfigError(f"--config is not valid JSON: {error}") from None
        if not isinstance(extra, dict):
            raise ConfigError("--config must be a JSON object")
        config.update(extra)
    config.update(_parse_overrides(args.overrides))
    build_config(algorithm.config_class, config)  # fail before Ray starts
    if args.restore:
        read_checkpoint(args.restore, algorithm.__name__)

    results_dir = Path(args.results_dir).expanduser().resolve() / "train"
    _check_writable(results_dir)
    stop: dict[str, float] = {"timesteps_total": args.timesteps}
    if args.time_s:
        stop["time_total_s"] = args.time_s
    callbacks: list[Any] = [TensorBoardLogger()]
    tracking = None
    if not args.no_mlflow:
        tracking = Tracking(
            args.mlflow_uri or default_tracking_uri(args.results_dir), "train", results_dir.parent
        )
        callbacks.append(MLflowTrialLogger(tracking))
    connect_ray(args.address)
    env_slug = config["env"].replace(":", "_").replace("/", "_")
    name = f"{algorithm.__name__}_{env_slug}_{time.strftime('%Y%m%d-%H%M%S')}"
    analysis = tune.run(
        algorithm,
        name=name,
        config=config,
        stop=stop,
        storage_path=str(results_dir),
        checkpoint_config=tune.CheckpointConfig(
            checkpoint_frequency=args.checkpoint_freq, checkpoint_at_end=True
        ),
        callbacks=callbacks,
        restore=str(Path(args.restore).resolve()) if args.restore else None,
        verbose=1,
    )
    trial = analysis.trials[0]
    result = trial.last_result or {}
    print()
    if trial.status == "ERROR":
        print(f"Training failed; see {trial.path}/error.txt")
        return 1
    print(
        f"Trained {algorithm.__name__} on {config['env']} for {result.get('timesteps_total', 0):,} env steps"
    )
    for key in ("episode_return_mean", "evaluation/episode_return_mean"):
        if key in result:
            print(f"  {key} = {result[key]:.2f}")
    checkpoint = trial.checkpoint
    print(f"Results:    {trial.path}")
    if checkpoint is not None:
        print(f"Checkpoint: {checkpoint.path}")
    if tracking is not None and checkpoint is not None:
        run_id = tracking.call(lambda: find_trial_run(tracking, trial.trial_id, None), "finding the run")
        if run_id:
            tracking.call(
                lambda: tracking.client.log_artifacts(run_id, checkpoint.path, "checkpoint"),
                "logging the checkpoint",
            )
            print(f"MLflow:     {tracking.tracking_uri}  (experiment 'train', run {run_id})")
    return 0


def _read_config_file(path: str) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file {path!r} does not exist")
    from rlsweep.experiments.experiment import load_yaml

    try:
        document = load_yaml(file.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path!r} is not valid YAML: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("config", {}), dict):
        raise ConfigError(f"config file {path!r} must be a mapping with a 'config' mapping")
    return document


def _check_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot create results folder {str(directory)!r}: {error.strerror}") from None
    if not os.access(directory, os.W_OK):
        raise ConfigError(f"results folder {str(directory)!r} is not writable")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from rlsweep.trainables import load_policy
    from rlsweep.trainables.checkpoint import read_checkpoint
    from rlsweep.trainables.envs import make_vector_env
    from rlsweep.trainables.evaluation import evaluate

    if args.episodes < 1:
        raise ConfigError("--episodes must be at least 1")
    config = read_checkpoint(args.checkpoint)["config"]
    policy = load_policy(args.checkpoint)
    env = make_vector_env(config["env"], min(args.episodes, 16), config.get("env_config"))
    metrics = evaluate(env, policy.compute_actions, args.episodes, args.seed)
    env.close()
    mean = metrics["episode_return_mean"]
    print(
        f"{config['env']}: {args.episodes} deterministic episodes, return mean {mean:.2f} "
        f"(min {metrics['episode_return_min']:.2f}, max {metrics['episode_return_max']:.2f}), "
        f"length mean {metrics['episode_len_mean']:.1f}"
    )
    return 0


def cmd_best(args: argparse.Namespace) -> int:
    from ray import tune

    from rlsweep.experiments.runner import best_result, load_sweep, write_best_config

    sweep_dir, experiment = load_sweep(args.results_dir)
    results = tune.Tuner.restore(str(sweep_dir), trainable=experiment.trainable).get_results()
    best = best_result(results, experiment)
    if best is None:
        raise ConfigError(f"no trial in {str(sweep_dir)!r} reported {experiment.metric!r}")
    path = write_best_config(sweep_dir, experiment, best)
    if args.output:
        path = Path(args.output)
        path.write_text((sweep_dir / "best_config.yaml").read_text())
    print(path.read_text(), end="")
    print(f"# written to {path}", file=sys.stderr)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from rlsweep.experiments.experiment import EXPERIMENTS_DIR, list_experiments
    from rlsweep.search_spaces import SEARCH_SPACES
    from rlsweep.trainables import ALGORITHMS

    print("Algorithms:")
    for name, trainable in ALGORITHMS.items():
        print(f"  {name:<10} {(trainable.__doc__ or '').strip().splitlines()[0]}")
    print("Search spaces:")
    for name, space in SEARCH_SPACES.items():
        print(f"  {name:<10} {(space.__doc__ or '').strip().splitlines()[0]}")
    print(f"Experiments ({EXPERIMENTS_DIR}):")
    for name in list_experiments():
        print(f"  {name}")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from rlsweep.experiments.mlflow_tracking import default_tracking_uri

    uri = args.mlflow_uri or default_tracking_uri(args.results_dir)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise ConfigError(f"no MLflow store at {uri}; run a sweep first, or pass --mlflow-uri")
    print(f"MLflow UI for {uri} at http://127.0.0.1:{args.port} (Ctrl-C stops it)", flush=True)
    return _serve(
        [_tool("mlflow"), "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(args.port)]
    )


def cmd_tensorboard(args: argparse.Namespace) -> int:
    logdir = tensorboard_logdir(Path(args.results_dir))
    print(f"TensorBoard for {logdir} at http://127.0.0.1:{args.port} (Ctrl-C stops it)", flush=True)
    return _serve(
        [_tool("tensorboard"), "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(args.port)]
    )


def tensorboard_logdir(path: Path) -> Path:
    """A sweep folder as given; else the newest sweep below it (sweep folders are named by
    their start time), whether `path` is an experiment's folder or the results folder."""
    from rlsweep.experiments.runner import EXPERIMENT_FILE, latest_sweep_dir

    path = path.expanduser().resolve()
    if not path.is_dir():
        raise ConfigError(f"results folder {str(path)!r} does not exist")
    if (path / EXPERIMENT_FILE).is_file():
        return path
    candidates = [p for p in [latest_sweep_dir(path), *map(latest_sweep_dir, path.iterdir())] if p]
    if not candidates:
        raise ConfigError(f"{str(path)!r} holds no rlsweep sweep")
    return max(candidates, key=lambda p: p.name)


def _tool(name: str) -> str:
    """A console script installed beside this Python (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else name


def _serve(command: list[str]) -> int:
    try:
        return subprocess.run(command, check=False).returncode
    except FileNotFoundError:
        raise ConfigError(f"{command[0]} is not installed; run `make setup`") from None
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
