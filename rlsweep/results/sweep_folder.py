"""Where one run of an experiment keeps its files: RESULTS/NAME/LABEL/.

A run's folder holds the resolved experiment (for `--resume`, `rlsweep best` and
`rlsweep test`), the search space's source, the Optuna study, the report files, and one
folder per trial (Tune's results, TensorBoard events, checkpoints).
"""

from __future__ import annotations

import inspect
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from rlsweep.experiment.files import experiment_from_dict
from rlsweep.experiment.schema import Experiment
from rlsweep.experiment.yaml_files import read_yaml_mapping
from rlsweep.results.storage import (
    RUN_MARKER,
    check_reachable,
    download_run_files,
    is_run,
    is_storage_uri,
    join,
    run_names,
    upload,
)
from rlsweep.trainables.config import ConfigError

EXPERIMENT_FILE = RUN_MARKER
TIMESTAMP = "%Y%m%d-%H%M%S"


@dataclass(frozen=True)
class SweepFolder:
    """One run's folder; its properties name the files inside."""

    path: Path
    """The run's local folder: all of it, or with `storage` the working copy of its own files."""
    storage: str | None = None
    """The run's home in remote storage (STORAGE/NAME/LABEL, `storage.py`), if it has one."""

    @property
    def tune_path(self) -> str:
        """Where Tune keeps this run's trials and state: its storage URI, else the folder."""
        return self.storage or str(self.path)

    def save_to_storage(self) -> None:
        """Copy the run's own files to its storage, if it has one."""
        if self.storage is not None:
            upload(self.path, self.storage)

    @property
    def experiment_file(self) -> Path:
        """The resolved experiment as it ran."""
        return self.path / EXPERIMENT_FILE

    @property
    def space_file(self) -> Path:
        """The search space's source as it ran (its narrowing is in the experiment file)."""
        return self.path / "search_space.py"

    @property
    def study_url(self) -> str:
        """The Optuna study (optuna-dashboard opens it)."""
        return f"sqlite:///{self.path / 'optuna.db'}"

    @property
    def best_config_file(self) -> Path:
        """The best trial's config; `rlsweep train --config-file` accepts it."""
        return self.path / "best_config.yaml"

    @property
    def trials_file(self) -> Path:
        """One row per trial: how it ended, its score, config and last result."""
        return self.path / "trials.csv"

    def new_test_folder(self) -> SweepFolder:
        """A new folder inside this run for a test phase of its top configs: test, test-2, ..."""
        path, suffix = self.path / "test", 1
        while path.exists():
            suffix += 1
            path = self.path / f"test-{suffix}"
        return self._inner(path)

    def test_folders(self) -> list[SweepFolder]:
        """This run's test phases, oldest first."""
        found = [p for p in self.path.glob("test*") if p.is_dir() and re.fullmatch(r"test(-\d+)?", p.name)]
        return [self._inner(p) for p in sorted(found, key=lambda p: int(p.name.partition("-")[2] or 1))]

    def _inner(self, path: Path) -> SweepFolder:
        return SweepFolder(path, None if self.storage is None else join(self.storage, path.name))

    @classmethod
    def create(cls, experiment: Experiment) -> SweepFolder:
        """A new folder for a run of `experiment`, holding its inputs.

        A search is labeled by its start time; a fixed config also by what it trains.
        """
        root = experiment_root(experiment)
        check_writable(root)
        label = time.strftime(TIMESTAMP)
        if not experiment.is_search:
            label = f"{experiment.trainable.__name__}_{_slug(experiment.env)}_{label}"
        path, suffix = root / label, 1
        while path.exists():  # two runs started in the same second
            suffix += 1
            path = root / f"{label}-{suffix}"
        if experiment.storage is not None:
            check_reachable(experiment.storage)
        path.mkdir()
        storage = None if experiment.storage is None else join(experiment.storage, experiment.name, path.name)
        folder = cls(path, storage)
        folder.experiment_file.write_text(yaml.safe_dump(experiment.to_dict(), sort_keys=False))
        folder.space_file.write_text(inspect.getsource(experiment.space.sample))
        folder.save_to_storage()
        return folder

    @classmethod
    def latest(cls, experiment_dir: Path) -> SweepFolder | None:
        """The most recently started run below an experiment's folder."""
        runs = [p for p in experiment_dir.glob("*") if (p / EXPERIMENT_FILE).is_file()]
        return cls(max(runs, key=started)) if runs else None

    @classmethod
    def find(cls, path: str | Path) -> SweepFolder:
        """A run's folder as given, or the latest run below an experiment's folder; either
        may be a storage URI (a local working copy of the run's own files is made)."""
        if is_storage_uri(path):
            return cls.find_stored(str(path))
        path = Path(path).expanduser().resolve()
        if not path.is_dir():
            raise ConfigError(f"results folder {str(path)!r} does not exist")
        if (path / EXPERIMENT_FILE).is_file():
            return cls(path)
        latest = cls.latest(path)
        if latest is None:
            raise ConfigError(f"{str(path)!r} holds no rlsweep sweep (no {EXPERIMENT_FILE} found)")
        return latest

    @classmethod
    def find_stored(cls, uri: str) -> SweepFolder:
        if not is_run(uri):
            runs = run_names(uri)
            if not runs:
                raise ConfigError(f"{uri!r} holds no rlsweep sweep (no {EXPERIMENT_FILE} found)")
            uri = join(uri, max(runs, key=lambda name: started(Path(name))))
        return cls(download_run_files(uri), uri)

    def read_experiment(self) -> Experiment:
        return experiment_from_dict(read_yaml_mapping(self.experiment_file, "experiment file"))


def experiment_root(experiment: Experiment) -> Path:
    """RESULTS/NAME: every run of the experiment, and the MLflow store beside them."""
    return Path(experiment.results_dir).expanduser().resolve() / experiment.name


def check_writable(directory: Path) -> None:
    """Create `directory` if needed; a ConfigError if it cannot be made or written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot create results folder {str(directory)!r}: {error.strerror}") from None
    if not os.access(directory, os.W_OK):
        raise ConfigError(f"results folder {str(directory)!r} is not writable")


def started(run_dir: Path) -> tuple[str, int, str]:
    """Sorts run folders by start: the timestamp in their label, then the same-second suffix."""
    match = re.search(r"(\d{8}-\d{6})(?:-(\d+))?$", run_dir.name)
    if match is None:
        return "", 0, run_dir.name
    return match[1], int(match[2] or 1), run_dir.name


def _slug(env: str) -> str:
    """An env's label as a folder name: "my.envs:Maze" -> "my.envs_Maze"."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", env).strip("_")
