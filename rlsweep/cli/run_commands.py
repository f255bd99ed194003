"""The commands that run an experiment through the pipeline: sweep, train, test, and check,
which stops before Ray starts."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rlsweep.cli.options import experiment_overrides, runtime_env_overrides, set_values
from rlsweep.trainables.config import ConfigError


def sweep(args: argparse.Namespace) -> int:
    from rlsweep.experiment.files import load_experiment

    overrides = experiment_overrides(args)
    for key, value in (
        ("num_samples", args.num_samples),
        ("max_concurrent_trials", args.max_concurrent),
        ("results_dir", args.results_dir),
        ("storage", args.storage),
    ):
        if value is not None:
            overrides[key] = value
    experiment = load_experiment(args.experiment, overrides)
    outcome = _run(experiment, args, resume=args.resume)
    if outcome.interrupted:
        resume = f"rlsweep sweep {args.experiment} --resume"
        if args.results_dir:
            resume += f" --results-dir {args.results_dir}"
        if args.storage:
            resume += f" --storage {args.storage}"
        print(f"Sweep interrupted; finished trials are kept. Continue it with: {resume}")
        return 130
    return 0 if outcome.best is not None else 1


def train(args: argparse.Namespace) -> int:
    from rlsweep.experiment.files import set_dotted
    from rlsweep.experiment.schema import StopSpec
    from rlsweep.experiment.training import training_experiment
    from rlsweep.experiment.yaml_files import read_yaml_mapping
    from rlsweep.results.trials import Ending
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
    for dotted_key, value in set_values(args).items():
        set_dotted(config, dotted_key, value)  # env_config.length=6 sets one env_config key
    if args.restore:
        config["restore_from"] = str(Path(args.restore).expanduser().resolve())
    runtime_env = {key.removeprefix("runtime_env."): v for key, v in runtime_env_overrides(args).items()}
    experiment = training_experiment(
        args.algo or document.get("algorithm", "PPO"),
        config,
        StopSpec(timesteps_total=args.timesteps, time_total_s=args.time_s),
        checkpoint_frequency=args.checkpoint_freq,
        results_dir=args.results_dir,
        storage=args.storage,
        runtime_env=runtime_env,
    )
    outcome = _run(experiment, args)
    if outcome.interrupted:
        return 130
    return 1 if outcome.count(Ending.FAILED) else 0


def serve(args: argparse.Namespace) -> int:
    """One trial of an external-simulator experiment with its fixed config, served on a
    known port and token for simulators that rlsweep does not launch."""
    import secrets

    from rlsweep.experiment.files import load_experiment
    from rlsweep.experiment.training import training_experiment
    from rlsweep.results.trials import Ending

    experiment = load_experiment(args.experiment, experiment_overrides(args))
    if experiment.env != "external":
        raise ConfigError(
            f"experiment {experiment.name!r} has env {experiment.env!r}; rlsweep serve runs "
            "experiments with env: external"
        )
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535, got {args.port}")
    token = args.token or secrets.token_urlsafe(16)
    config = dict(experiment.config)
    env_config = {k: v for k, v in dict(config.get("env_config") or {}).items() if k != "simulator"}
    env_config.update(host=args.host, port=args.port, token=token)
    # One server: a fixed port serves one worker and one seed.
    config.update(env=experiment.env, env_config=env_config, num_workers=0, num_seeds=1)
    scheme = "https" if env_config.get("tls_cert") else "http"
    print(f"Serving simulators at {scheme}://{args.host}:{args.port} with token {token}", flush=True)
    served = training_experiment(
        experiment.algorithm,
        config,
        experiment.stop,
        checkpoint_frequency=experiment.checkpoint_frequency,
        results_dir=experiment.results_dir,
        runtime_env=experiment.runtime_env,
    )
    outcome = _run(served, args)
    if outcome.interrupted:
        return 130
    return 1 if outcome.count(Ending.FAILED) else 0


def check(args: argparse.Namespace) -> int:
    from rlsweep.experiment.check import check_experiment, check_lines
    from rlsweep.experiment.files import load_experiment, resolve_experiment_path

    experiment = load_experiment(args.experiment, experiment_overrides(args))
    found = check_experiment(experiment)
    print(f"Experiment:   {experiment.name} ({resolve_experiment_path(args.experiment)})")
    print("\n".join(check_lines(found)))
    print(f"OK: no problem found; Ray was not started. Run it with: rlsweep sweep {args.experiment}")
    return 0


def test(args: argparse.Namespace) -> int:
    from rlsweep.experiment.schema import HeldOutSpec
    from rlsweep.pipeline.runner import run_test_phase
    from rlsweep.report.summary import print_summary
    from rlsweep.results.sweep_folder import SweepFolder
    from rlsweep.trainables.config import build_config

    folder = SweepFolder.find(args.results_dir)
    default = folder.read_experiment().test or HeldOutSpec()
    top = default.top if args.top is None else args.top
    seeds = default.seeds if args.seeds is None else args.seeds
    spec = build_config(HeldOutSpec, {"top": top, "seeds": seeds}, label="experiment", prefix="test.")
    outcome = run_test_phase(
        folder, spec, address=args.address, mlflow_uri=args.mlflow_uri, track_mlflow=not args.no_mlflow
    )
    print_summary(outcome)
    if outcome.interrupted:
        return 130
    return 0 if outcome.best is not None else 1


def _run(experiment: Any, args: argparse.Namespace, resume: bool = False) -> Any:
    """Check the experiment's env for real, then run it through the one pipeline and print
    its summary."""
    from rlsweep.experiment.check import check_experiment, check_lines
    from rlsweep.pipeline.runner import run_experiment
    from rlsweep.report.summary import print_summary

    print("\n".join(check_lines(check_experiment(experiment), configs=False)), flush=True)
    outcome = run_experiment(
        experiment,
        resume=resume,
        address=args.address,
        mlflow_uri=args.mlflow_uri,
        track_mlflow=not args.no_mlflow,
    )
    print_summary(outcome)
    return outcome
