"""Where the learner computes, and how host arrays get there.

Rollouts and replayed batches arrive as numpy arrays on the host (images as uint8). On a
GPU learner each batch crosses once: copied into pinned (page-locked) memory, then to the
GPU with a non-blocking copy that the CUDA stream orders before the kernels reading it, so
the host never waits for it. Images stay uint8 until they are on the device; the encoder
scales them there.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

logger = logging.getLogger(__name__)


def learner_device(num_gpus: float) -> torch.device:
    """CUDA when GPUs were asked for and one is visible; the CPU otherwise, with a warning."""
    if num_gpus > 0:
        if torch.cuda.is_available():
            return torch.device("cuda")
        logger.warning("num_gpus=%s but CUDA is not available; the learner runs on the CPU", num_gpus)
    return torch.device("cpu")


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """`array` as a tensor on `device`: shared with numpy on the CPU (copied if read-only, as
    arrays from Ray's object store are), through pinned memory without blocking on CUDA."""
    tensor = torch.from_numpy(array if array.flags.writeable else array.copy())
    if device.type != "cuda":
        return tensor
    return tensor.pin_memory().to(device, non_blocking=True)
