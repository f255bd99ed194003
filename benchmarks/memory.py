"""Memory of a run's whole process tree over time: rlsweep's default sweep and `rlsweep train`
next to Stable-Baselines3 and rl-zoo3 on the same machine, in the same run.

Each command runs in a fresh process; every `--interval` seconds the benchmark sums RSS and
PSS (proportional set size: shared pages split among the processes sharing them, so the
tree's PSS is what it really costs the machine) over the command's process and all its
descendants (Ray's GCS, raylet and worker processes included). The table gives each
command's peak tree RSS and PSS, its driver's (the command's own process) peak RSS, the
largest single process, and the ratios to rl-zoo3's optimize run.

Targets (issue 26): the default sweep (2 trials at a time) at most 1 GB peak tree RSS, its
driver at most 350 MB; a trial process at most SB3's process + 100 MB.

    python benchmarks/memory.py [--timesteps 20000] [--interval 0.5] [--timeline]

rl-zoo3 is not a dependency of rlsweep: `pip install rl_zoo3` for its row (skipped if absent).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import psutil

SB3_PPO = """
import torch
torch.set_num_threads(1)
from stable_baselines3 import PPO
PPO("MlpPolicy", "CartPole-v1", n_steps=256, batch_size=64, seed=0).learn({timesteps})
"""
"""SB3's PPO on CartPole in one process: the reference for one trial's process."""


@dataclass
class Peak:
    """The largest values seen while sampling one command's process tree."""

    tree_rss: float = 0.0
    tree_pss: float = 0.0
    driver_rss: float = 0.0
    at_peak: list[tuple[str, float, float]] = field(default_factory=list)
    """(process, RSS MB, PSS MB) of every process when the tree's RSS peaked."""
    processes: int = 0
    timeline: list[tuple[float, float, float, int]] = field(default_factory=list)
    """(seconds, tree RSS MB, tree PSS MB, processes) per sample."""
    wall_s: float = 0.0
    returncode: int = 0


def commands(timesteps: int, results: str) -> dict[str, list[str]]:
    python = sys.executable
    sweep_steps = str(timesteps)
    found = {
        "rlsweep sweep cartpole_ppo (2 trials at once)": [
            python, "-m", "rlsweep", "sweep", "cartpole_ppo", "--results-dir", results,
            "--num-samples", "2", "--max-concurrent", "2",
            "--set", f"stop.timesteps_total={sweep_steps}", "--set", "test=null",
        ],
        "rlsweep train (PPO CartPole-v1)": [
            python, "-m", "rlsweep", "train", "--timesteps", sweep_steps, "--results-dir", results,
        ],
        "SB3 PPO CartPole-v1 (one process)": [python, "-c", SB3_PPO.format(timesteps=timesteps)],
    }  # fmt: skip
    if importlib.util.find_spec("rl_zoo3") is not None:
        found["rl-zoo3 optimize PPO CartPole-v1 (2 trials)"] = [
            python, "-m", "rl_zoo3.train", "--algo", "ppo", "--env", "CartPole-v1", "-n", sweep_steps,
            "--optimize", "--n-trials", "2", "--n-jobs", "1", "--sampler", "tpe", "--pruner", "median",
            "--n-evaluations", "2", "--eval-episodes", "5", "-f", os.path.join(results, "zoo"),
        ]  # fmt: skip
    return found


def sample(root: psutil.Process, peak: Peak, started: float) -> None:
    try:
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    rss = pss = 0.0
    processes = []
    for process in tree:
        try:
            memory = process.memory_full_info()
            name = process_name(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        rss += memory.rss
        pss += memory.pss
        processes.append((name, memory.rss / 2**20, memory.pss / 2**20))
        if process.pid == root.pid:
            peak.driver_rss = max(peak.driver_rss, memory.rss / 2**20)
    if rss / 2**20 > peak.tree_rss:
        peak.at_peak = sorted(processes, key=lambda row: -row[1])
    peak.tree_rss = max(peak.tree_rss, rss / 2**20)
    peak.tree_pss = max(peak.tree_pss, pss / 2**20)
    peak.processes = max(peak.processes, len(tree))
    peak.timeline.append((time.monotonic() - started, rss / 2**20, pss / 2**20, len(tree)))


def process_name(process: psutil.Process) -> str:
    """A short name: Ray's own (ray::IDLE, raylet), a script's file name, or the command."""
    command = process.cmdline()
    if not command or process.name() in ("raylet", "gcs_server") or command[0].startswith("ray::"):
        return command[0] if command else process.name()
    scripts = [part for part in command[1:4] if part.endswith(".py") or part.startswith("rl")]
    return os.path.basename(scripts[0]) if scripts else " ".join(command[:3])[-50:]


def measure(command: list[str], interval: float) -> Peak:
    peak = Peak()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    root = psutil.Process(process.pid)
    while process.poll() is None:
        sample(root, peak, started)
        time.sleep(interval)
    peak.wall_s = time.monotonic() - started
    peak.returncode = process.returncode
    if process.returncode:
        print(f"  exit {process.returncode}: {process.stderr.read().decode()[-800:]}", file=sys.stderr)
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--timesteps", type=int, default=20_000, help="env steps per trial / run")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between samples")
    parser.add_argument("--timeline", action="store_true", help="also print each command's samples")
    parser.add_argument(
        "--only", help="run only the commands whose name contains this (sweep, train, SB3, zoo)"
    )
    args = parser.parse_args()
    peaks: dict[str, Peak] = {}
    with tempfile.TemporaryDirectory() as results:
        for name, command in commands(args.timesteps, results).items():
            if args.only and args.only.lower() not in name.lower():
                continue
            peaks[name] = peak = measure(command, args.interval)
            print(
                f"measured: {name}: tree RSS {peak.tree_rss:.0f} MB, PSS {peak.tree_pss:.0f} MB, "
                f"driver {peak.driver_rss:.0f} MB, {peak.wall_s:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    reference = next((peak for name, peak in peaks.items() if name.startswith("rl-zoo3")), None)
    print(f"\nPeak memory, MB ({args.timesteps:,} env steps per trial; {os.cpu_count()} cores)\n")
    header = f"{'command':48} {'tree RSS':>9} {'tree PSS':>9} {'driver':>7} {'procs':>5}"
    header += f" {'wall s':>7} {'RSS / zoo':>9}"
    print(header)
    for name, peak in peaks.items():
        ratio = f"{peak.tree_rss / reference.tree_rss:.1f}x" if reference else "-"
        print(
            f"{name:48} {peak.tree_rss:9.0f} {peak.tree_pss:9.0f} {peak.driver_rss:7.0f} "
            f"{peak.processes:5d} {peak.wall_s:7.0f} {ratio:>9}"
            + ("" if peak.returncode == 0 else f"  (exit {peak.returncode})")
        )
    for name, peak in peaks.items():
        print(f"\n{name}: its processes when the tree's RSS peaked (RSS, PSS MB)")
        for process, rss, pss in peak.at_peak:
            print(f"  {rss:6.0f} {pss:6.0f}  {process}")
    if args.timeline:
        for name, peak in peaks.items():
            print(f"\n{name}: seconds, tree RSS MB, tree PSS MB, processes")
            step = max(1, len(peak.timeline) // 40)
            for seconds, rss, pss, count in peak.timeline[::step]:
                print(f"  {seconds:6.1f} {rss:7.0f} {pss:7.0f} {count:4d}")


if __name__ == "__main__":
    main()
