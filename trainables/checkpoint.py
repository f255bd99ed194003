"""The on-disk checkpoint format shared by every algorithm."""

from __future__ import annotations

from pathlib import Path
from typing import Any

STATE_FILE = "rlsweep_state.pt"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint path that is missing or does not hold an rlsweep checkpoint."""


def write_checkpoint(
    checkpoint_dir: str | Path, algorithm: str, config: dict[str, Any], state: dict[str, Any]
) -> None:
    payload = {
        "format": "rlsweep",
        "version": FORMAT_VERSION,
        "algorithm": algorithm,
        "config": config,
        "state": state,
    }
    import ray.cloudpickle as cloudpickle
    import torch

    # cloudpickle: a config's env may be a class or factory from the user's __main__ script,
    # which plain pickle can only store by a reference that no other process resolves.
    torch.save(payload, Path(checkpoint_dir) / STATE_FILE, pickle_module=cloudpickle)


def checkpoint_file(path: str | Path) -> Path:
    """The state file of a checkpoint directory (or the file itself), checked to exist."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    state_file = path / STATE_FILE if path.is_dir() else path
    if not state_file.is_file():
        raise CheckpointError(f"{str(path)!r} is not an rlsweep checkpoint (no {STATE_FILE} in it)")
    return state_file


def read_checkpoint(path: str | Path, algorithm: str | None = None) -> dict[str, Any]:
    """The payload written by `write_checkpoint`, from the checkpoint directory or its state file.

    With `algorithm`, a checkpoint of another algorithm is an error too.
    """
    import torch

    state_file = checkpoint_file(path)
    try:
        # Our own pickled payload (numpy arrays, RNG state): only load checkpoints you trust.
        payload = torch.load(state_file, map_location="cpu", weights_only=False)
    except Exception as error:
        raise CheckpointError(f"{str(state_file)!r} is not a readable rlsweep checkpoint: {error}") from None
    if not isinstance(payload, dict) or payload.get("format") != "rlsweep":
        raise CheckpointError(f"{str(state_file)!r} is not an rlsweep checkpoint")
    if algorithm is not None and payload["algorithm"] != algorithm:
        raise CheckpointError(f"{str(path)!r} is a {payload['algorithm']} checkpoint, not {algorithm}")
    return payload
