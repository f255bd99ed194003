"""Reading and writing datasets: Minari datasets (the Farama format that replaced D4RL)
and plain .npz files of transitions. Nothing is ever downloaded: a Minari dataset is read
from a folder, or by id from MINARI_DATASETS_PATH (Minari's default root without it).

Where a dataset is named (the `dataset` config key, `rlsweep record --output`):
- a path ending in .npz: the arrays of `Dataset` plus its info as JSON (`write_npz`);
- a folder holding a Minari dataset (its `data/` folder, or that folder itself);
- otherwise a Minari dataset id (namespace/name-v0) under the local Minari root.
"""

from __future__ import annotations

import json
import os
import re
import warnings
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np

from rlsweep.trainables.config import ConfigError
from rlsweep.trainables.offline.dataset import ARRAYS, Dataset, DatasetInfo

MINARI_HINT = "Minari datasets need the offline extra: pip install 'rlsweep[offline]'"


def is_npz(name: str) -> bool:
    return str(name).endswith(".npz")


def read_dataset(name: str) -> Dataset:
    """The dataset `name` names, checked for consistent lengths and finite values; every
    problem is a one-line ConfigError."""
    dataset = read_npz(Path(name).expanduser()) if is_npz(name) else read_minari(name)
    dataset.check(repr(name))
    return dataset


def write_dataset(dataset: Dataset, name: str) -> str:
    """Write `dataset` where `name` says (see the module docstring); returns where it went."""
    if is_npz(name):
        write_npz(dataset, Path(name).expanduser())
        return str(Path(name).expanduser())
    return write_minari(dataset, name)


# -- .npz ------------------------------------------------------------------------------


def write_npz(dataset: Dataset, path: Path) -> None:
    """One uncompressed .npz: the six arrays, and `info` as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {name: getattr(dataset, name) for name in ARRAYS}
    with open(path, "wb") as file:
        np.savez(file, **arrays, info=np.array(dataset.info.to_json()))


def read_npz(path: Path) -> Dataset:
    """A .npz of transitions: the six arrays (terminations and truncations may be missing:
    no episode ends but the last) and optionally `info` as written by `write_npz`."""
    if not path.is_file():
        raise ConfigError(f"dataset file {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise ConfigError(f"dataset file {str(path)!r} is not a readable .npz file ({error})") from None
    missing = [name for name in ARRAYS[:4] if name not in arrays]
    if missing:
        raise ConfigError(
            f"dataset file {str(path)!r} lacks the arrays {missing}; a .npz dataset holds "
            f"{', '.join(ARRAYS)} (the last two optional)"
        )
    count = len(arrays["rewards"])
    info = DatasetInfo.from_json(str(arrays["info"])) if "info" in arrays else DatasetInfo()
    return Dataset(
        observations=arrays["observations"],
        actions=arrays["actions"],
        rewards=arrays["rewards"].astype(np.float32),
        next_observations=arrays["next_observations"],
        terminations=arrays.get("terminations", np.zeros(count, bool)).astype(bool),
        truncations=arrays.get("truncations", np.zeros(count, bool)).astype(bool),
        info=info,
    )


# -- Minari ----------------------------------------------------------------------------


def _minari():
    try:
        import minari
    except ImportError:
        raise ConfigError(MINARI_HINT) from None
    return minari


def minari_data_folder(name: str) -> Path:
    """The `data/` folder of the Minari dataset `name` (a folder, or an id under the root)."""
    path = Path(name).expanduser()
    for candidate in (path / "data", path):
        if (candidate / "metadata.json").is_file():
            return candidate
    root = Path(os.environ.get("MINARI_DATASETS_PATH", Path.home() / ".minari" / "datasets"))
    folder = root / name / "data"
    if not (folder / "metadata.json").is_file():
        raise ConfigError(
            f"dataset {name!r} is neither a .npz file, a Minari dataset folder, nor a Minari dataset id "
            f"under {str(root)!r} (MINARI_DATASETS_PATH); nothing is downloaded: record it with "
            "`rlsweep record` or `minari download` it first"
        )
    return folder


def read_minari(name: str) -> Dataset:
    """A Minari dataset's episodes concatenated into transitions."""
    minari = _minari()
    folder = minari_data_folder(name)
    try:
        dataset = minari.MinariDataset(str(folder))
        episodes = list(dataset.iterate_episodes())
        metadata = dataset.storage.metadata
    except Exception as error:  # h5py and Minari raise many kinds on a damaged file
        raise ConfigError(f"Minari dataset {name!r} cannot be read: {str(error).splitlines()[0]}") from None
    if not episodes:
        raise ConfigError(f"Minari dataset {name!r} holds no episodes")
    for episode in episodes:
        if isinstance(episode.observations, dict) or isinstance(episode.actions, dict):
            raise ConfigError(
                f"Minari dataset {name!r} has Dict observations or actions; rlsweep trains from Box or "
                "Discrete ones"
            )
    env_spec = dataset.spec.env_spec
    description = metadata.get("description") or ""
    recorded = json.loads(description.partition(": ")[2]) if description.startswith("rlsweep record") else {}
    info = DatasetInfo(
        env_id=recorded.get("env_id") or (env_spec.id if env_spec is not None else None),
        observation_space=dataset.observation_space,
        action_space=dataset.action_space,
        policy=metadata.get("algorithm_name") or "unknown",
        ref_min_score=metadata.get("ref_min_score"),
        ref_max_score=metadata.get("ref_max_score"),
        seed=recorded.get("seed"),
    )
    return Dataset(
        observations=np.concatenate([episode.observations[:-1] for episode in episodes]),
        actions=np.concatenate([episode.actions for episode in episodes]),
        rewards=np.concatenate([episode.rewards for episode in episodes]).astype(np.float32),
        next_observations=np.concatenate([episode.observations[1:] for episode in episodes]),
        terminations=np.concatenate([episode.terminations for episode in episodes]).astype(bool),
        truncations=_truncations(episodes),
        info=info,
    )


def _truncations(episodes: list) -> np.ndarray:
    """Each episode's truncations, its last step marked truncated when it did not terminate
    (Minari's last episode may be cut by the recording's end)."""
    parts = []
    for episode in episodes:
        truncations = np.asarray(episode.truncations, bool).copy()
        if not episode.terminations[-1]:
            truncations[-1] = True
        parts.append(truncations)
    return np.concatenate(parts)


def write_minari(dataset: Dataset, name: str) -> str:
    """A Minari dataset: an id (namespace/name-v0) under the local root, or a folder path
    (its last part is the id; the root is its parent). Returns the dataset's folder."""
    minari = _minari()
    from minari.data_collector import EpisodeBuffer

    path = Path(name).expanduser()
    dataset_id = name
    root = os.environ.get("MINARI_DATASETS_PATH")
    if "/" in name and (path.is_absolute() or name.startswith(".")):
        root, dataset_id = str(path.parent), path.name
    if not re.search(r"-v\d+$", dataset_id):
        raise ConfigError(
            f"Minari dataset ids end in -v<version>, e.g. pendulum/expert-v0; got {dataset_id!r}"
        )
    buffers = []
    starts, ends = dataset.episode_starts(), dataset.episode_ends
    for start, end in zip(starts, ends, strict=True):
        rows = slice(start, end + 1)
        buffers.append(
            EpisodeBuffer(
                observations=np.concatenate(
                    [dataset.observations[rows], dataset.next_observations[end : end + 1]]
                ),
                actions=dataset.actions[rows],
                rewards=dataset.rewards[rows],
                terminations=dataset.terminations[rows],
                truncations=dataset.truncations[rows],
                infos={},
            )
        )
    info = dataset.info
    previous_root = os.environ.get("MINARI_DATASETS_PATH")
    if root is not None:
        os.environ["MINARI_DATASETS_PATH"] = root
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Minari's asks for authors and permalinks
            created = minari.create_dataset_from_buffers(
                dataset_id,
                buffers,
                env=info.env_id if info.env_id in gym.registry else None,
                algorithm_name=info.policy,
                author="rlsweep record",
                author_email="-",
                code_permalink="-",
                observation_space=info.observation_space,
                action_space=info.action_space,
                ref_min_score=info.ref_min_score,
                ref_max_score=info.ref_max_score,
                description="rlsweep record: " + json.dumps({"seed": info.seed, "env_id": info.env_id}),
                data_format="hdf5",
            )
    except ValueError as error:
        raise ConfigError(f"cannot write Minari dataset {name!r}: {error}") from None
    finally:
        if previous_root is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous_root
    return str(Path(created.spec.data_path).parent)
