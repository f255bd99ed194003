"""How much memory eight trials reading one dataset take: one copy per node, or eight?

    python benchmarks/offline_memory.py [--transitions 1000000] [--trials 8]

Writes a dataset of random Pendulum-shaped transitions, then starts `--trials` processes
that each open it as a trial does (`open_shared`: memory-mapped from the node's cache) and
read every byte of it (as sampling minibatches over a run does). Each reports its unique
memory (USS: pages no other process shares) and its proportional share (PSS); the dataset
is held once when the USS each trial adds for it is near zero and the PSS sum is about one
dataset, not eight. The same run reads it into each trial's own memory for comparison.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rlsweep.trainables.offline.dataset import ARRAYS, Dataset, DatasetInfo
from rlsweep.trainables.offline.formats import read_dataset, write_npz
from rlsweep.trainables.offline.shared import open_shared


def trial(path: str, shared: bool, ready, report) -> None:
    before = psutil.Process().memory_full_info()
    dataset = open_shared(path) if shared else read_dataset(path)
    total = sum(float(getattr(dataset, name).sum(dtype=np.float64)) for name in ARRAYS[:4])
    ready.wait()  # every trial has read it all before anyone measures
    after = psutil.Process().memory_full_info()
    report.put((after.uss - before.uss, after.pss - before.pss, total))
    ready.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transitions", type=int, default=1_000_000)
    parser.add_argument("--trials", type=int, default=8)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="rlsweep-offline-memory-"))
    os.environ["RLSWEEP_DATASET_CACHE"] = str(folder / "cache")
    rng = np.random.default_rng(0)
    count = args.transitions
    dataset = Dataset(
        observations=rng.standard_normal((count, 3), np.float32),
        actions=rng.uniform(-2, 2, (count, 1)).astype(np.float32),
        rewards=rng.standard_normal(count, np.float32),
        next_observations=rng.standard_normal((count, 3), np.float32),
        terminations=np.zeros(count, bool),
        truncations=(np.arange(count) % 200) == 199,
        info=DatasetInfo(env_id="Pendulum-v1"),
    )
    path = str(folder / "big.npz")
    write_npz(dataset, Path(path))
    size = sum(getattr(dataset, name).nbytes for name in ARRAYS)
    open_shared(path)  # the driver's check writes the node's cache before trials start
    print(f"dataset: {count} transitions, {size / 2**20:.1f} MiB of arrays")
    print("| each trial's copy | trials | USS added, all trials | PSS added, all trials | PSS / one copy |")
    print("|---|---|---|---|---|")
    for shared, how in ((True, "memory-mapped from the node's cache"), (False, "read into its own memory")):
        ready = multiprocessing.Barrier(args.trials)
        report = multiprocessing.Queue()
        processes = [
            multiprocessing.Process(target=trial, args=(path, shared, ready, report))
            for _ in range(args.trials)
        ]
        for process in processes:
            process.start()
        results = [report.get() for _ in processes]
        for process in processes:
            process.join()
        uss = sum(r[0] for r in results)
        pss = sum(r[1] for r in results)
        print(f"| {how} | {args.trials} | {uss / 2**20:.1f} MiB | {pss / 2**20:.1f} MiB | {pss / size:.2f} |")


if __name__ == "__main__":
    main()
