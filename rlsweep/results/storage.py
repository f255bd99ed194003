"""Remote storage of runs: an experiment's `storage:` (or `--storage`), a pyarrow filesystem
URI such as s3://bucket/prefix or gs://bucket/prefix, is the home of its runs.

Tune writes every trial's results and checkpoints there itself (its `storage_path`), from
whichever node the trial runs on. The run's own files (experiment.yaml, the Optuna study,
trials.csv, reports) are written into a local working copy first, as without storage, and
copied to the same place (STORAGE/NAME/LABEL) when the run starts and when it ends. `rlsweep
best`, `rlsweep test` and `--resume` on a stored run bring those files back into a working
copy and read Tune's results from storage.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from rlsweep.trainables.config import ConfigError

if TYPE_CHECKING:
    import pyarrow.fs

RUN_MARKER = "experiment.yaml"
"""The file that makes a folder an rlsweep run: its resolved experiment."""


def is_storage_uri(location: str | Path) -> bool:
    """A URI with a scheme (s3://, gs://, ...), not a local path."""
    return isinstance(location, str) and "://" in location and urlparse(location).scheme != "file"


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *parts])


def check_reachable(uri: str) -> None:
    """A ConfigError of one line when the filesystem of `uri` cannot be opened or read."""
    filesystem, path = _filesystem(uri)
    try:
        filesystem.get_file_info(path)
    except Exception as error:
        raise ConfigError(f"storage {uri!r} cannot be read: {_first_line(error)}") from None


def upload(local: Path, uri: str) -> None:
    """Copy the files of `local` (subfolders included) to `uri`, replacing what is there."""
    import pyarrow.fs

    filesystem, path = _filesystem(uri)
    pyarrow.fs.copy_files(
        str(local), path, source_filesystem=pyarrow.fs.LocalFileSystem(), destination_filesystem=filesystem
    )


def download_run_files(uri: str) -> Path:
    """A local working copy of the run at `uri`: its own files, without Tune's trial folders
    (those hold a params.json; Tune reads them from storage). Kept in the temp folder, one
    per URI."""
    import pyarrow.fs

    filesystem, path = _filesystem(uri)
    local = Path(tempfile.gettempdir()) / "rlsweep-storage" / urlparse(uri).scheme / path
    files = [
        info.path[len(path) :].lstrip("/")
        for info in filesystem.get_file_info(pyarrow.fs.FileSelector(path, recursive=True))
        if info.type is pyarrow.fs.FileType.File
    ]
    trial_folders = {relative.rpartition("/")[0] for relative in files if relative.endswith("/params.json")}
    for relative in files:
        if any(relative.startswith(folder + "/") for folder in trial_folders):
            continue
        target = local / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with filesystem.open_input_stream(join(path, relative)) as source:
            target.write_bytes(source.read())
    return local


def is_run(uri: str) -> bool:
    """Whether `uri` is a stored run (it holds the run's experiment file)."""
    import pyarrow.fs

    filesystem, path = _filesystem(uri)
    return filesystem.get_file_info(join(path, RUN_MARKER)).type is pyarrow.fs.FileType.File


def run_names(uri: str) -> list[str]:
    """The stored runs directly below `uri` (an experiment's folder in storage)."""
    import pyarrow.fs

    filesystem, path = _filesystem(uri)
    folders = filesystem.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    return [
        info.base_name
        for info in folders
        if info.type is pyarrow.fs.FileType.Directory and is_run(join(uri, info.base_name))
    ]


@contextlib.contextmanager
def local_copy(location: Path | str) -> Iterator[Path]:
    """A local folder, as it is; a stored folder (a checkpoint's URI), copied into a temporary one."""
    if not is_storage_uri(location):
        yield Path(location)
        return
    import pyarrow.fs

    filesystem, path = _filesystem(str(location))
    with tempfile.TemporaryDirectory() as local:
        pyarrow.fs.copy_files(
            path, local, source_filesystem=filesystem, destination_filesystem=pyarrow.fs.LocalFileSystem()
        )
        yield Path(local)


def uri_of(path: str, filesystem: pyarrow.fs.FileSystem) -> str:
    """The URI of a path on a pyarrow filesystem (a Tune checkpoint's), "s3://bucket/key"."""
    scheme = {"gcs": "gs"}.get(filesystem.type_name, filesystem.type_name)
    return f"{scheme}://{path}"


def _filesystem(uri: str) -> tuple[pyarrow.fs.FileSystem, str]:
    import pyarrow.fs

    try:
        return pyarrow.fs.FileSystem.from_uri(uri)
    except Exception as error:
        raise ConfigError(f"storage {uri!r} cannot be opened: {_first_line(error)}") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
