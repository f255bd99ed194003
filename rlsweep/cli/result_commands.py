"""The commands that read what runs left behind: best, evaluate, list, and the ui and
tensorboard servers."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from rlsweep.trainables.config import ConfigError


def evaluate(args: argparse.Namespace) -> int:
    from rlsweep.trainables import load_policy
    from rlsweep.trainables.envs.build import make_vector_env
    from rlsweep.trainables.sampling.evaluation import evaluate
    from rlsweep.trainables.seeds import seed_index

    if args.episodes < 1:
        raise ConfigError("--episodes must be at least 1")
    policy = load_policy(args.checkpoint, seed_index=args.seed_index)
    config = policy.config
    env = make_vector_env(config.env_source, min(args.episodes, 16), config.env_config)
    metrics = {key: values[0] for key, values in evaluate([env], policy, args.episodes, [args.seed]).items()}
    env.close()
    which = f" (seed {seed_index(policy.seeds[0], config.seed)})" if config.num_seeds > 1 else ""
    print(
        f"{config.env}{which}: {args.episodes} deterministic episodes, return mean "
        f"{metrics['episode_return_mean']:.2f} (min {metrics['episode_return_min']:.2f}, "
        f"max {metrics['episode_return_max']:.2f}), length mean {metrics['episode_len_mean']:.1f}"
    )
    return 0


def best(args: argparse.Namespace) -> int:
    from rlsweep.pipeline.runner import read_outcome
    from rlsweep.report.files import write_best_config
    from rlsweep.results.sweep_folder import SweepFolder

    folder = SweepFolder.find(args.results_dir)
    outcome = read_outcome(folder)
    if outcome.best is None:
        raise ConfigError(f"no trial in {str(folder.path)!r} reported {outcome.experiment.metric!r}")
    path = write_best_config(outcome)
    folder.save_to_storage()
    if args.output:
        path = Path(args.output)
        path.write_text(folder.best_config_file.read_text())
    print(path.read_text(), end="")
    print(f"# written to {path}", file=sys.stderr)
    return 0


def listing(args: argparse.Namespace) -> int:
    from rlsweep.experiment.files import list_experiments, shipped_experiments_dir
    from rlsweep.search_spaces import SEARCH_SPACES
    from rlsweep.trainables import ALGORITHMS

    print("Algorithms:")
    for name, trainable in ALGORITHMS.items():
        print(f"  {name:<10} {(trainable.__doc__ or '').strip().splitlines()[0]}")
    print("Search spaces:")
    for name, space in SEARCH_SPACES.items():
        print(f"  {name:<10} {(space.__doc__ or '').strip().splitlines()[0]}")
    print(f"Experiments ({shipped_experiments_dir()}):")
    for name in list_experiments():
        print(f"  {name}")
    return 0


def ui(args: argparse.Namespace) -> int:
    from rlsweep.tracking.mlflow_store import MODEL_TRAINING_VIEW, default_tracking_uri

    uri = args.mlflow_uri or default_tracking_uri(args.results_dir)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise ConfigError(f"no MLflow store at {uri}; run a sweep first, or pass --mlflow-uri")
    url = f"http://127.0.0.1:{args.port}/{MODEL_TRAINING_VIEW}"
    print(f"MLflow UI for {uri} at {url} (Ctrl-C stops it)", flush=True)
    return _serve(
        [_tool("mlflow"), "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(args.port)]
    )


def tensorboard(args: argparse.Namespace) -> int:
    logdir = tensorboard_logdir(Path(args.results_dir))
    print(f"TensorBoard for {logdir} at http://127.0.0.1:{args.port} (Ctrl-C stops it)", flush=True)
    return _serve(
        [_tool("tensorboard"), "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(args.port)]
    )


def tensorboard_logdir(path: Path) -> Path:
    """A run's folder as given; else the newest run below it, whether `path` is an
    experiment's folder or the results folder."""
    from rlsweep.results.sweep_folder import EXPERIMENT_FILE, SweepFolder, started

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
