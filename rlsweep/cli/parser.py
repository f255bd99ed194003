"""The `rlsweep` command line's commands and their help."""

from __future__ import annotations

import argparse

from rlsweep.cli import result_commands, run_commands
from rlsweep.cli.options import (
    DeprecatedAlias,
    add_address,
    add_mlflow,
    add_overrides,
    add_run_options,
    add_runtime_env,
    add_storage,
)

SET_HELP = "override an experiment key, dotted for nesting (stop.timesteps_total=50000, config.lr=1e-3)"


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
    add_storage(sweep)
    add_overrides(sweep, SET_HELP)
    sweep.add_argument("--resume", action="store_true", help="continue the latest interrupted sweep")
    add_run_options(sweep)
    sweep.set_defaults(handler=run_commands.sweep)

    check = commands.add_parser(
        "check",
        help="check an experiment end to end without starting Ray: env, spaces, algorithm, configs",
        description="Build the experiment's env, reset and step it, run gymnasium's env checker, check the "
        "algorithm and a few configs sampled from the narrowed space against it, and print what was found. "
        "Exits 2 with one line on the first problem.",
    )
    check.add_argument("experiment", help="experiment file, or the name of a shipped one")
    add_overrides(check, SET_HELP)
    add_runtime_env(check)
    check.set_defaults(handler=run_commands.check)

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
    add_overrides(train, "set a config key (lr=1e-3, env_config.size=7); wins over --config")
    train.add_argument(
        "--restore",
        metavar="CHECKPOINT",
        help="continue from an rlsweep checkpoint (its algorithm and config)",
    )
    train.add_argument("--timesteps", type=int, default=100_000, help="env steps to train (default 100000)")
    train.add_argument("--time-s", type=float, help="stop after this many seconds")
    train.add_argument("--checkpoint-freq", type=int, default=10, help="checkpoint every N iterations")
    train.add_argument("--results-dir", default="results", help="default: results")
    add_storage(train)
    add_run_options(train)
    train.set_defaults(handler=run_commands.train)

    serve = commands.add_parser(
        "serve",
        help="attach mode: train one trial of an `env: external` experiment (its fixed config) "
        "on simulators started elsewhere; prints the address and token they connect with",
    )
    serve.add_argument("experiment", help="a shipped experiment's name or a YAML file with env: external")
    serve.add_argument("--port", type=int, required=True, help="the port to serve on")
    serve.add_argument("--host", default="127.0.0.1", help="the address to bind (default: loopback)")
    serve.add_argument("--token", help="the token simulators send (default: a fresh random one)")
    add_overrides(serve, SET_HELP)
    add_run_options(serve)
    serve.set_defaults(handler=run_commands.serve)

    evaluate = commands.add_parser(
        "evaluate", help="run a checkpoint's policy deterministically; no Ray needed"
    )
    evaluate.add_argument("checkpoint", help="a checkpoint folder written by a sweep or `rlsweep train`")
    evaluate.add_argument("--episodes", type=int, default=10, help="episodes to run (default 10)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the evaluation envs")
    evaluate.add_argument(
        "--seed-index", type=int, help="of a multi-seed checkpoint, this seed (default: the best evaluated)"
    )
    evaluate.add_argument(
        "--member", type=int, action=DeprecatedAlias, dest="seed_index", help=argparse.SUPPRESS
    )
    evaluate.set_defaults(handler=result_commands.evaluate)

    record = commands.add_parser(
        "record",
        help="roll a policy out in an env into a dataset (Minari or .npz) for offline algorithms",
        description="Record transitions of a policy (random, an rlsweep checkpoint, or a module:fn taking "
        "one observation) with optional exploration noise, for --episodes or --steps, into OUTPUT: a .npz "
        "file, a Minari dataset id (under MINARI_DATASETS_PATH) or a Minari dataset folder. The seed "
        "makes it reproducible.",
    )
    record.add_argument(
        "--env", required=True, help="any env rlsweep can build (gymnasium id, module:Name, ...)"
    )
    record.add_argument("--policy", default="random", help="random, a checkpoint folder, or module:fn")
    amount = record.add_mutually_exclusive_group(required=True)
    amount.add_argument("--episodes", type=int, help="episodes to record")
    amount.add_argument("--steps", type=int, help="env steps to record (the last episode may be cut)")
    record.add_argument("--output", required=True, help="a .npz path, a Minari dataset id, or a folder path")
    record.add_argument("--seed", type=int, default=0, help="seed of the env, the noise and random actions")
    record.add_argument("--epsilon", type=float, default=0.0, help="chance of a uniformly random action")
    record.add_argument("--noise-std", type=float, default=0.0, help="Gaussian noise added to Box actions")
    record.add_argument(
        "--env-config", help="the env's keyword arguments as a JSON object (e.g. max_episode_steps)"
    )
    record.add_argument(
        "--ref-min-score", type=float, help="an episode return scoring 0 (random) in normalized scores"
    )
    record.add_argument(
        "--ref-max-score", type=float, help="an episode return scoring 100 (expert) in normalized scores"
    )
    record.set_defaults(handler=result_commands.record)

    test = commands.add_parser(
        "test", help="train a finished sweep's top configs again on held-out seeds; the best there wins"
    )
    test.add_argument("results_dir", help="a sweep folder, or an experiment folder (its latest sweep)")
    test.add_argument("--top", type=int, help="configs to test (default: the experiment's test.top, else 3)")
    test.add_argument("--seeds", type=int, help="test seeds per config (default: the experiment's, else 5)")
    add_address(test)
    add_mlflow(test)
    test.set_defaults(handler=run_commands.test)

    best = commands.add_parser("best", help="print and save the best config of a finished sweep")
    best.add_argument("results_dir", help="a sweep folder, or an experiment folder (its latest sweep)")
    best.add_argument("--output", help="where to write the config (default: SWEEP/best_config.yaml)")
    best.set_defaults(handler=result_commands.best)

    listing = commands.add_parser("list", help="algorithms, search spaces and shipped experiments")
    listing.set_defaults(handler=result_commands.listing)

    ui = commands.add_parser(
        "ui",
        help="serve the MLflow UI on a sweep's tracking store, opened on that sweep's trials by score",
        description="Serve MLflow's UI on the tracking store of SWEEP and open (or print, without a screen) "
        "the page of its trials, best score first, with their scores and hyperparameters as columns.",
    )
    ui.add_argument(
        "sweep",
        nargs="?",
        metavar="SWEEP",
        help="a sweep folder, or an experiment or results folder (its newest sweep); default: results",
    )
    ui.add_argument("--results-dir", help=argparse.SUPPRESS)  # the SWEEP argument's former name
    ui.add_argument(
        "--mlflow-uri", help="another tracking store (default: $MLFLOW_TRACKING_URI, else RESULTS/mlflow.db)"
    )
    ui.add_argument("--port", type=int, help="default 5000")
    ui.set_defaults(handler=result_commands.ui)

    dashboard = commands.add_parser(
        "dashboard",
        help="serve optuna-dashboard on a sweep's Optuna study (pip install 'rlsweep[dashboard]')",
    )
    dashboard.add_argument(
        "sweep", metavar="SWEEP", help="a sweep folder, or an experiment folder (its latest sweep)"
    )
    dashboard.add_argument("--port", type=int, default=8080)
    dashboard.set_defaults(handler=result_commands.dashboard)

    board = commands.add_parser("tensorboard", help="serve TensorBoard on the latest sweep")
    board.add_argument(
        "results_dir", nargs="?", default="results", help="results, an experiment or a sweep folder"
    )
    board.add_argument("--port", type=int, default=6006)
    board.set_defaults(handler=result_commands.tensorboard)
    return parser
