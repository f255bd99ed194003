"""The `rlsweep` command line: sweep, train, check, test, best, evaluate, list, ui, tensorboard."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

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
    # "my_envs:Maze" imports my_envs.py from the current folder, as `python -m` would (a
    # console script's path starts at its own folder); Ray's local workers get this folder too.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
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
    _add_runtime_env(sweep)
    _add_mlflow(sweep)
    sweep.set_defaults(handler=cmd_sweep)

    check = commands.add_parser(
        "check",
        help="check an experiment end to end without starting Ray: env, spaces, algorithm, configs",
        description="Build the experiment's env, reset and step it, run gymnasium's env checker, check the "
        "algorithm and a few configs sampled from the narrowed space against it, and print what was found. "
        "Exits 2 with one line on the first problem.",
    )
    check.add_argument("experiment", help="experiment file, or the name of a shipped one")
    check.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="as for sweep"
    )
    _add_runtime_env(check)
    check.set_defaults(handler=cmd_check)

    train = commands.add_parser("train", help="train one trial with a fixed config")
    train.add_argument("--algo", help="algorithm (default: the config file's, else PPO)")
    train.add_argument(
        "--env",
        help="gymnasium id, module:EnvId-v0, module:EnvClassOrFactory, or register_env name "
        "(default: the config file's, else CartPole-v1)",
    )
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
    _add_runtime_env(train)
    _add_mlflow(train)
    train.set_defaults(handler=cmd_train)

    evaluate = commands.add_parser(
        "evaluate", help="run a checkpoint's policy deterministically; no Ray needed"
    )
    evaluate.add_argument("checkpoint", help="a checkpoint folder written by a sweep or `rlsweep train`")
    evaluate.add_argument("--episodes", type=int, default=10, help="episodes to run (default 10)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the evaluation envs")
    evaluate.add_argument(
        "--member", type=int, help="of a multi-seed checkpoint, this member (default: the best evaluated)"
    )
    evaluate.set_defaults(handler=cmd_evaluate)

    test = commands.add_parser(
        "test", help="train a finished sweep's top configs again on held-out seeds; the best there wins"
    )
    test.add_argument("results_dir", help="a sweep folder, or an experiment folder (its latest sweep)")
    test.add_argument("--top", type=int, help="configs to test (default: the experiment's test.top, else 3)")
    test.add_argument("--seeds", type=int, help="test seeds per config (default: the experiment's, else 5)")
    _add_address(test)
    _add_mlflow(test)
    test.set_defaults(handler=cmd_test)

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


def _add_runtime_env(parser: argparse.ArgumentParser) -> None:
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


def _runtime_env_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """--working-dir and --py-module as experiment overrides, with paths from the current folder."""
    overrides: dict[str, Any] = {}
    if args.working_dir:
        overrides["runtime_env.working_dir"] = str(Path(args.working_dir).expanduser().resolve())
    if args.py_modules:
        overrides["runtime_env.py_modules"] = [str(Path(p).expanduser().resolve()) for p in args.py_modules]
    return overrides


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

    overrides = {**_parse_overrides(args.overrides), **_runtime_env_overrides(args)}
    for key, value in (
        ("num_samples", args.num_samples),
        ("max_concurrent_trials", args.max_concurrent),
        ("results_dir", args.results_dir),
    ):
        if value is not None:
            overrides[key] = value
    experiment = load_experiment(args.experiment, overrides)
    outcome = _run(experiment, args, resume=args.resume)
    if outcome.interrupted:
        resume = f"rlsweep sweep {args.experiment} --resume"
        if args.results_dir:
            resume += f" --results-dir {args.results_dir}"
        print(f"Sweep interrupted; finished trials are kept. Continue it with: {resume}")
        return 130
    return 0 if outcome.best is not None else 1


def cmd_train(args: argparse.Namespace) -> int:
    from rlsweep.experiments.experiment import StopSpec, training_experiment
    from rlsweep.experiments.outcome import Ending
    from rlsweep.experiments.yaml_files import read_yaml_mapping
    from rlsweep.trainables.checkpoint import read_checkpoint

    document: dict[str, Any] = {}
    if args.config_file:
        document = read_yaml_mapping(Path(args.config_file), "config file")
        if not isinstance(document.get("config", {}), dict):
            raise ConfigError(f"config file {args.config_file!r} must be a mapping with a 'config' mapping")
    elif args.restore:
        document = read_checkpoint(args.restore)
    config = dict(document.get("config") or {})
    if args.env or document.get("env"):
        config["env"] = args.env or document["env"]
    if args.config:
        try:
            extra = json.loads(args.config)
        except json.JSONDecodeError as error:
            raise ConfigError(f"--config is not valid JSON: {error}") from None
        if not isinstance(extra, dict):
            raise ConfigError("--config must be a JSON object")
        config.update(extra)
    config.update(_parse_overrides(args.overrides))
    if args.restore:
        config["restore_from"] = str(Path(args.restore).expanduser().resolve())
    runtime_env = {key.removeprefix("runtime_env."): v for key, v in _runtime_env_overrides(args).items()}
    experiment = training_experiment(
        args.algo or document.get("algorithm", "PPO"),
        config,
        StopSpec(timesteps_total=args.timesteps, time_total_s=args.time_s),
        checkpoint_frequency=args.checkpoint_freq,
        results_dir=args.results_dir,
        runtime_env=runtime_env,
    )
    outcome = _run(experiment, args)
    if outcome.interrupted:
        return 130
    return 1 if outcome.count(Ending.FAILED) else 0


def cmd_check(args: argparse.Namespace) -> int:
    from rlsweep.experiments.check import check_experiment, check_lines
    from rlsweep.experiments.experiment import load_experiment, resolve_experiment_path

    overrides = {**_parse_overrides(args.overrides), **_runtime_env_overrides(args)}
    experiment = load_experiment(args.experiment, overrides)
    check = check_experiment(experiment)
    print(f"Experiment:   {experiment.name} ({resolve_experiment_path(args.experiment)})")
    print("\n".join(check_lines(check)))
    print(f"OK: no problem found; Ray was not started. Run it with: rlsweep sweep {args.experiment}")
    return 0


def _run(experiment: Any, args: argparse.Namespace, resume: bool = False) -> Any:
    """Check the experiment's env for real, then run it through the one pipeline and print
    its summary."""
    from rlsweep.experiments.check import check_experiment, check_lines
    from rlsweep.experiments.runner import run_experiment
    from rlsweep.experiments.summary import print_summary

    print("\n".join(check_lines(check_experiment(experiment), configs=False)), flush=True)

    # Our own progress lines replace Tune's console output engine (and its pointer to a
    # TensorBoard folder in Ray's temp dir, which is not where our event files are).
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    outcome = run_experiment(
        experiment,
        resume=resume,
        address=args.address,
        mlflow_uri=args.mlflow_uri,
        track_mlflow=not args.no_mlflow,
    )
    print_summary(outcome)
    return outcome


def cmd_evaluate(args: argparse.Namespace) -> int:
    from rlsweep.trainables import SEED_STRIDE, load_policy
    from rlsweep.trainables.envs import make_vector_env
    from rlsweep.trainables.evaluation import evaluate

    if args.episodes < 1:
        raise ConfigError("--episodes must be at least 1")
    policy = load_policy(args.checkpoint, member=args.member)
    config = policy.config
    env = make_vector_env(config.env, min(args.episodes, 16), config.env_config)
    metrics = {key: values[0] for key, values in evaluate([env], policy, args.episodes, [args.seed]).items()}
    env.close()
    member = f" (member {(policy.seeds[0] - config.seed) // SEED_STRIDE})" if config.num_seeds > 1 else ""
    print(
        f"{config.env}{member}: {args.episodes} deterministic episodes, return mean "
        f"{metrics['episode_return_mean']:.2f} (min {metrics['episode_return_min']:.2f}, "
        f"max {metrics['episode_return_max']:.2f}), length mean {metrics['episode_len_mean']:.1f}"
    )
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from rlsweep.experiments.experiment import HeldOutSpec
    from rlsweep.experiments.runner import run_test_phase
    from rlsweep.experiments.summary import print_summary
    from rlsweep.experiments.sweep_folder import SweepFolder
    from rlsweep.trainables.config import build_config

    folder = SweepFolder.find(args.results_dir)
    default = folder.read_experiment().test or HeldOutSpec()
    top = default.top if args.top is None else args.top
    seeds = default.seeds if args.seeds is None else args.seeds
    spec = build_config(HeldOutSpec, {"top": top, "seeds": seeds}, label="experiment", prefix="test.")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    outcome = run_test_phase(
        folder, spec, address=args.address, mlflow_uri=args.mlflow_uri, track_mlflow=not args.no_mlflow
    )
    print_summary(outcome)
    if outcome.interrupted:
        return 130
    return 0 if outcome.best is not None else 1


def cmd_best(args: argparse.Namespace) -> int:
    from rlsweep.experiments.report import write_best_config
    from rlsweep.experiments.runner import read_outcome
    from rlsweep.experiments.sweep_folder import SweepFolder

    folder = SweepFolder.find(args.results_dir)
    outcome = read_outcome(folder)
    if outcome.best is None:
        raise ConfigError(f"no trial in {str(folder.path)!r} reported {outcome.experiment.metric!r}")
    path = write_best_config(outcome)
    if args.output:
        path = Path(args.output)
        path.write_text(folder.best_config_file.read_text())
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
    from rlsweep.experiments.mlflow_tracking import MODEL_TRAINING_VIEW, default_tracking_uri

    uri = args.mlflow_uri or default_tracking_uri(args.results_dir)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise ConfigError(f"no MLflow store at {uri}; run a sweep first, or pass --mlflow-uri")
    url = f"http://127.0.0.1:{args.port}/{MODEL_TRAINING_VIEW}"
    print(f"MLflow UI for {uri} at {url} (Ctrl-C stops it)", flush=True)
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
    """A run's folder as given; else the newest run below it, whether `path` is an
    experiment's folder or the results folder."""
    from rlsweep.experiments.sweep_folder import EXPERIMENT_FILE, SweepFolder, started

    path = path.expanduser().resolve()
    if not path.is_dir():
        raise ConfigError(f"results folder {str(path)!r} does not exist")
    if (path / EXPERIMENT_FILE).is_file():
        return path
    candidates = [SweepFolder.latest(p) for p in [path, *(d for d in path.iterdir() if d.is_dir())]]
    runs = [folder.path for folder in candidates if folder is not None]
    if not runs:
        raise ConfigError(f"{str(path)!r} holds no rlsweep sweep")
    return max(runs, key=started)


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
