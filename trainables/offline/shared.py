"""One copy of a dataset per node: the first process on a node that opens a dataset writes
its arrays to this node's cache as .npy files, and every trial there memory-maps them, so
the operating system's page cache holds the data once however many trials read it.

The cache lives under $RLSWEEP_DATASET_CACHE (default ~/.cache/rlsweep/datasets), one
folder per source file and version (path, size and modification time), written to a
temporary folder and renamed into place, so concurrent trials never read half a copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from rlsweep.trainables.offline.dataset import ARRAYS, Dataset, DatasetInfo
from rlsweep.trainables.offline.formats import is_npz, minari_data_folder, read_dataset

INFO_FILE = "info.json"


def cache_root() -> Path:
    return Path(os.environ.get("RLSWEEP_DATASET_CACHE", Path.home() / ".cache" / "rlsweep" / "datasets"))


def source_file(name: str) -> Path:
    """The file whose contents the dataset `name` is."""
    if is_npz(name):
        return Path(name).expanduser().resolve()
    return (minari_data_folder(name) / "main_data.hdf5").resolve()


def cache_folder(name: str) -> Path:
    """Where this node keeps the arrays of `name` as it is now on disk."""
    source = source_file(name)
    stat = source.stat() if source.exists() else None
    version = f"{source}|{stat.st_size}|{stat.st_mtime_ns}" if stat else str(source)
    return cache_root() / hashlib.sha256(version.encode()).hexdigest()[:20]


def open_shared(name: str) -> Dataset:
    """The dataset `name` as read-only memory-mapped arrays of this node's cached copy,
    read, checked and written there first if this node has none yet."""
    folder = cache_folder(name)
    if not (folder / INFO_FILE).is_file():
        dataset = read_dataset(name)
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".writing-", dir=folder.parent))
        for array in ARRAYS:
            np.save(staging / f"{array}.npy", np.ascontiguousarray(getattr(dataset, array)))
        (staging / INFO_FILE).write_text(dataset.info.to_json())
        try:
            staging.rename(folder)
        except OSError:  # another process on this node finished first: use its copy
            shutil.rmtree(staging, ignore_errors=True)
    arrays = {array: np.load(folder / f"{array}.npy", mmap_mode="r") for array in ARRAYS}
    return Dataset(**arrays, info=DatasetInfo.from_json((folder / INFO_FILE).read_text()))
