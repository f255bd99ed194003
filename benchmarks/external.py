"""External simulators: PPO on CartPole played through the policy server, against the same
PPO stepping CartPole in-process, measured in the same run; and a load test of the server.

    python benchmarks/external.py --seeds 3                  # the race to 475
    python benchmarks/external.py --load --clients 1 10 50 100 200

The race (benchmarks/race.py: until the mean of the last 20 training episodes reaches 475):
  in-process         PPO, 8 CartPole copies in a vector env in the trial's process
  external remote    the same PPO with `env: external` and 8 launched copies of
                     examples/external_cartpole/cartpole_simulator.py, the server computing
                     every action (one HTTP request per step and simulator)
  external local     the same simulators with `--inference local`: each holds a copy of the
                     policy, and sends its episodes in bulk

The load test: one policy server with N slots and a PPO policy answering from one forward
pass per step (as a rollout worker does), and N simulated clients in another process
(asyncio + aiohttp, keep-alive connections) each calling get_action in a loop over
loopback; it reports actions/s and the latency of get_action (p50, p99) at each N, and the
server's CPU time per action (user + system, from /proc): on a shared machine throughput and
latency follow the other jobs' load, while CPU per action is what the server itself costs
(1e6 / that = the actions/s one free core could serve).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
WINDOW = 20
CLIENT_PROCESSES = 2
TARGET = 475.0
SIMULATOR = (
    Path(__file__).resolve().parent.parent / "examples" / "external_cartpole" / "cartpole_simulator.py"
)
SPACES = {
    "observation_space": {"type": "Box", "low": -5.0, "high": 5.0, "shape": [4]},
    "action_space": {"type": "Discrete", "n": 2},
}
PPO = {"num_envs_per_worker": 8, "rollout_length": 128, "num_epochs": 4, "minibatch_size": 256, "lr": 1e-3}


def external(inference: str) -> dict:
    arguments = "--server {address} --token {token} --seed {seed}"
    command = f"{{python}} {SIMULATOR} {arguments} --inference {inference}"
    return {
        **PPO,
        "env": "external",
        "env_config": {**SPACES, "simulator": {"command": command, "per_worker": 8}},
    }


CONTENDERS = {
    "in-process": {**PPO, "env": "CartPole-v1"},
    "external remote": external("remote"),
    "external local": external("local"),
}


def train(config: dict, seed: int, max_steps: int) -> tuple[int | None, float | None, float]:
    """Env steps and wall seconds until the mean of the last WINDOW training episodes first
    reaches TARGET (None, None if never within max_steps), and env steps/s overall."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from rlsweep.trainables import get_algorithm

    start = time.perf_counter()
    algo = get_algorithm("PPO")(config={**config, "seed": seed, "evaluation_interval": 0})
    reached = (None, None)
    while algo.timesteps_total < max_steps:
        algo.train()
        last = list(algo.episodes.returns[0])[-WINDOW:]
        if len(last) == WINDOW and np.mean(last) >= TARGET:
            reached = (algo.timesteps_total, time.perf_counter() - start)
            break
    rate = algo.timesteps_total / (time.perf_counter() - start)
    algo.stop()
    return (*reached, rate)


def race(names: list[str], seeds: range, max_steps: int) -> None:
    print(
        f"{'contender':<16} {'seed':>4} {'steps to 475':>12} {'wall s':>7} {'steps/s':>8} "
        f"{'steps x':>8} {'wall x':>7}"
    )
    context = multiprocessing.get_context("spawn")
    for seed in seeds:
        baseline = None
        for name in names:
            with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                steps, wall, rate = pool.submit(train, CONTENDERS[name], seed, max_steps).result()
            baseline = baseline or (steps, wall)
            ratio = [f"{a / b:.2f}" if a and b else "-" for a, b in zip((steps, wall), baseline, strict=True)]
            print(
                f"{name:<16} {seed:>4} {steps or '-':>12} {f'{wall:.0f}' if wall else '-':>7} {rate:>8,.0f} "
                f"{ratio[0]:>8} {ratio[1]:>7}",
                flush=True,
            )


# -- load test ----------------------------------------------------------------------------


def serve(num_clients: int, ready: multiprocessing.Queue) -> None:
    import torch

    torch.set_num_threads(1)
    from rlsweep.trainables.config import build_config
    from rlsweep.trainables.external.vector_env import ExternalVectorEnv
    from rlsweep.trainables.models.policies import ActorCriticPolicy
    from rlsweep.trainables.ppo import PPOConfig
    from rlsweep.trainables.seeds import generators

    env = ExternalVectorEnv({**SPACES, "token": "load"}, num_clients)
    cfg = build_config(PPOConfig, {"env": "external", "env_config": SPACES})
    policy = ActorCriticPolicy(cfg, env.single_observation_space, env.single_action_space, "cpu", [0])
    gens = generators([0])
    ready.put(env.address)
    obs, _ = env.reset()
    while True:
        with torch.no_grad():
            actions, _, _ = policy.explore({"vector": obs[None].astype("float32")}, {}, gens)
        obs, *_ = env.step(policy.env_actions(actions)[0])


async def clients(address: str, num_clients: int, seconds: float) -> tuple[int, list[float]]:
    import aiohttp

    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    headers = {"Authorization": "Bearer load"}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def simulate(index: int) -> None:
            async with session.post(f"{address}/episodes", json={}) as response:
                episode = (await response.json())["episode_id"]
            obs = [0.01 * index, 0.0, 0.0, 0.0]
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                async with session.post(
                    f"{address}/episodes/{episode}/action", json={"observation": obs}
                ) as r:
                    await r.json()
                latencies.append(time.perf_counter() - start)
            async with session.post(f"{address}/episodes/{episode}/end", json={"observation": obs}) as r:
                await r.read()

        # Slots step in lockstep: once some clients stop at the deadline, the others' last
        # requests wait for ever; they are left unanswered and uncounted.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(simulate(i) for i in range(num_clients))), seconds + 5)
    return len(latencies), latencies


def run_clients(address: str, num_clients: int, seconds: float, out: multiprocessing.Queue) -> None:
    _, latencies = asyncio.run(clients(address, num_clients, seconds))
    out.put(latencies)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid`, all its threads (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_test(levels: list[int], seconds: float) -> None:
    print(f"{'clients':>7} {'actions/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'server CPU us/action':>21}")
    context = multiprocessing.get_context("spawn")
    for num_clients in levels:
        ready, out = context.Queue(), context.Queue()
        server = context.Process(target=serve, args=(num_clients, ready), daemon=True)
        server.start()
        address = ready.get(timeout=60)
        # Clients in CLIENT_PROCESSES processes, so one Python client process is not the limit.
        shares = [len(range(i, num_clients, CLIENT_PROCESSES)) for i in range(CLIENT_PROCESSES)]
        loads = [
            context.Process(target=run_clients, args=(address, share, seconds, out))
            for share in shares
            if share
        ]
        cpu = cpu_seconds(server.pid)
        for load in loads:
            load.start()
        latencies = [latency for _ in loads for latency in out.get(timeout=seconds + 120)]
        cpu = cpu_seconds(server.pid) - cpu
        for load in loads:
            load.join()
        server.terminate()
        server.join()
        rate = len(latencies) / seconds
        warm = sorted(latencies[len(latencies) // 10 :])  # the first tenth connects and warms up
        p50, p99 = statistics.median(warm), warm[int(0.99 * (len(warm) - 1))]
        per_action = cpu / max(len(latencies), 1) * 1e6
        print(
            f"{num_clients:>7} {rate:>10,.0f} {p50 * 1e3:>7.1f} {p99 * 1e3:>7.1f} {per_action:>21.0f}",
            flush=True,
        )


if __name__ == "__main__":
    if "--load" in sys.argv:
        parser = argparse.ArgumentParser()
        parser.add_argument("--load", action="store_true")
        parser.add_argument("--clients", type=int, nargs="+", default=[1, 10, 50, 100, 200])
        parser.add_argument("--seconds", type=float, default=8.0)
        args = parser.parse_args()
        load_test(args.clients, args.seconds)
    else:
        parser = argparse.ArgumentParser(
            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        parser.add_argument("--seeds", type=int, default=3)
        parser.add_argument("--first-seed", type=int, default=0)
        parser.add_argument("--max-steps", type=int, default=200_000)
        parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=list(CONTENDERS))
        args = parser.parse_args()
        race(args.contenders, range(args.first_seed, args.first_seed + args.seeds), args.max_steps)
