"""The commands that read what runs left behind: best, evaluate, list, and the ui,
dashboard and tensorboard servers."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
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

    width = max(map(len, [*ALGORITHMS, *SEARCH_SPACES]))
    print("Algorithms:")
    for name, trainable in ALGORITHMS.items():
        print(f"  {name:<{width}} {_summary(trainable.__doc__)}")
    print("Search spaces:")
    for name, space in SEARCH_SPACES.items():
        print(f"  {name:<{width}} {_summary(space.__doc__)}")
    print(f"Experiments ({shipped_experiments_dir()}):")
    for name in list_experiments():
        print(f"  {name}")
    return 0


def _summary(docstring: str | None) -> str:
    """A docstring's first paragraph on one line: summaries may wrap in the source."""
    return " ".join((docstring or "").strip().split("\n\n")[0].split())


def ui(args: argparse.Namespace) -> int:
    """Serve MLflow's UI on the store of a sweep and open (or print) that sweep's page."""
    from rlsweep.tracking.mlflow_store import default_tracking_uri
    from rlsweep.tracking.mlflow_view import LOCAL_UI_PORT, local_ui_address

    path = Path(args.sweep or args.results_dir or "results").expanduser().resolve()
    run = newest_run(path) if path.is_dir() else None
    results_dir = run.parent.parent if run else path  # a run's folder is RESULTS/NAME/LABEL
    uri = args.mlflow_uri or default_tracking_uri(results_dir)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise ConfigError(f"no MLflow store at {uri}; run a sweep first, or pass --mlflow-uri")
    port = args.port or LOCAL_UI_PORT
    url = local_ui_address(port) + _ui_page(uri, run)
    print(f"MLflow UI for {uri} at {url} (Ctrl-C stops it)", flush=True)
    server = [_tool("mlflow"), "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(port)]
    _open_in_browser_when_up(local_ui_address(port) + "health", url)
    # A personal UI needs one worker and no job runner (it runs GenAI scorers): fewer
    # processes to start on a machine that may still be running sweeps.
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    return _serve([*server, "--workers", "1"])


def _ui_page(tracking_uri: str, run: Path | None) -> str:
    """A sweep's page (its trials by score) when `run` is a sweep logged to this store,
    else the store's experiments list, both in the UI's model-training pages."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from rlsweep.tracking.mlflow_store import PARENT_RECORD_FILE
    from rlsweep.tracking.mlflow_view import EXPERIMENTS_PAGE, sweep_page

    record = run / PARENT_RECORD_FILE if run else None
    if record is None or not record.is_file():
        return EXPERIMENTS_PAGE
    parent_run_id = record.read_text().strip()
    try:
        experiment_id = MlflowClient(tracking_uri).get_run(parent_run_id).info.experiment_id
    except MlflowException:
        raise ConfigError(
            f"sweep {str(run)!r} logged MLflow run {parent_run_id}, which {tracking_uri} does not hold; "
            "pass the store it logged to with --mlflow-uri"
        ) from None
    return sweep_page(experiment_id, parent_run_id)


def _open_in_browser_when_up(health_url: str, url: str) -> None:
    """Open `url` in the user's browser once the server answers, where there is a screen."""
    import threading
    import webbrowser

    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return

    def wait_then_open() -> None:
        import urllib.request

        for _ in range(240):
            try:
                urllib.request.urlopen(health_url, timeout=2)
            except OSError:
                time.sleep(0.5)
                continue
            webbrowser.open(url)
            return

    threading.Thread(target=wait_then_open, daemon=True).start()


def dashboard(args: argparse.Namespace) -> int:
    """Serve optuna-dashboard on a sweep's Optuna study."""
    from rlsweep.results.sweep_folder import SweepFolder

    folder = SweepFolder.find(args.sweep)
    if not (folder.path / "optuna.db").is_file():
        raise ConfigError(f"{str(folder.path)!r} holds no Optuna study (optuna.db); only a search has one")
    address = f"http://127.0.0.1:{args.port}/"
    url = f"{address}dashboard/studies/{_study_id(folder.study_url)}"
    print(f"optuna-dashboard for {folder.study_url} at {url} (Ctrl-C stops it)", flush=True)
    _open_in_browser_when_up(address, url)
    command = [_tool("optuna-dashboard"), folder.study_url, "--host", "127.0.0.1", "--port", str(args.port)]
    return _serve(command, install_hint="pip install 'rlsweep[dashboard]'")


def _study_id(storage_url: str) -> int:
    """The id of the sweep's study (its storage holds that one), as optuna-dashboard's URLs name it."""
    import optuna

    storage = optuna.storages.RDBStorage(storage_url)
    (name,) = optuna.get_all_study_names(storage)
    return storage.get_study_id_from_name(name)


def tensorboard(args: argparse.Namespace) -> int:
    path = Path(args.results_dir).expanduser().resolve()
    if not path.is_dir():
        raise ConfigError(f"results folder {str(path)!r} does not exist")
    logdir = newest_run(path)
    if logdir is None:
        raise ConfigError(f"{str(path)!r} holds no rlsweep sweep")
    print(f"TensorBoard for {logdir} at http://127.0.0.1:{args.port} (Ctrl-C stops it)", flush=True)
    return _serve(
        [_tool("tensorboard"), "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(args.port)]
    )


def newest_run(path: Path) -> Path | None:
    """A run's folder as given; else the newest run below it, whether `path` is an
    experiment's folder or the results folder; None when it holds none."""
    from rlsweep.results.sweep_folder import EXPERIMENT_FILE, SweepFolder, started

    if (path / EXPERIMENT_FILE).is_file():
        return path
    candidates = [SweepFolder.latest(p) for p in [path, *(d for d in path.iterdir() if d.is_dir())]]
    runs = [folder.path for folder in candidates if folder is not None]
    return max(runs, key=started) if runs else None


def _tool(name: str) -> str:
    """A console script installed beside this Python (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else name


def _serve(command: list[str], install_hint: str = "run `make setup`") -> int:
    try:
        return subprocess.run(command, check=False).returncode
    except FileNotFoundError:
        raise ConfigError(f"{command[0]} is not installed; {install_hint}") from None
    except KeyboardInterrupt:
        return 0


def record(args: argparse.Namespace) -> int:
    """Roll a policy out into a dataset file; no Ray needed."""
    import json

    from rlsweep.trainables.offline.formats import write_dataset
    from rlsweep.trainables.offline.record import record as record_dataset

    try:
        env_config = json.loads(args.env_config) if args.env_config else None
    except json.JSONDecodeError as error:
        raise ConfigError(f"--env-config is not valid JSON: {error}") from None
    dataset = record_dataset(
        args.env,
        args.policy,
        episodes=args.episodes,
        steps=args.steps,
        seed=args.seed,
        epsilon=args.epsilon,
        noise_std=args.noise_std,
        env_config=env_config,
        ref_min_score=args.ref_min_score,
        ref_max_score=args.ref_max_score,
        progress=lambda line: print(line, flush=True),
    )
    where = write_dataset(dataset, args.output)
    returns = dataset.episode_returns()
    print(
        f"Wrote {len(dataset)} transitions, {len(returns)} episodes (return mean {returns.mean():.1f}, "
        f"min {returns.min():.1f}, max {returns.max():.1f}) of {dataset.info.policy} to {where}"
    )
    return 0
