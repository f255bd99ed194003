"""Multi-agent PPO benchmarks, each trained in-process (num_workers=0) and capped in wall time.

    python benchmarks/multiagent.py cartpole    # 4 CartPoles as agents, a policy each
    python benchmarks/multiagent.py tictactoe   # league self-play, then 1,000 greedy games per matchup
    python benchmarks/multiagent.py spread      # simple_spread_v3: shared PPO vs MAPPO, same env steps

cartpole: single-agent PPO on CartPole-v1 and MultiAgentPPO on 4 CartPoles (policy_mapping_fn:
per_agent, the same hyperparameters), each until its training return (mean of the last 100
episodes; for multi-agent, of every policy) first reaches 475. Target: the multi-agent run
needs at most 4x the single-agent env steps (an env step of the multi-agent env steps all 4
CartPoles once).

tictactoe: tictactoe_v3 self-play for a wall-time budget, then the deterministic learner plays
1,000 games as first and 1,000 as second player against random and against the one-step
lookahead heuristic. Targets: never loses to random (<= 1% losses) as either player, >= 95%
wins as first player against random, <= 5% losses against the lookahead.
"""

from __future__ import annotations

import argparse
import time

import torch

from rlsweep.trainables.league import outcome_rates
from rlsweep.trainables.multi_agent_ppo import MultiAgentPPO
from rlsweep.trainables.ppo import PPO

CARTPOLE = {
    "num_envs_per_worker": 16,
    "rollout_length": 64,
    "num_epochs": 4,
    "minibatch_size": 256,
    "lr": 1e-3,
    "evaluation_interval": 0,
}
TARGET = 475.0
SPREAD = {
    "env": "mpe2:simple_spread_v3",
    "env_config": {"N": 3, "max_cycles": 25},
    "num_envs_per_worker": 8,
    "rollout_length": 100,
    "minibatch_size": 600,
    "num_epochs": 10,
    "lr": 1e-3,
    "ent_coef": 0.01,
    "evaluation_interval": 0,
    "evaluation_num_episodes": 50,
}
LOOKAHEAD = "rlsweep.trainables.board_game_opponents:tictactoe_lookahead"
TICTACTOE = {
    "env": "pettingzoo.classic:tictactoe_v3",
    "num_envs_per_worker": 32,
    "rollout_length": 32,
    "num_epochs": 8,
    "minibatch_size": 256,
    "lr": 1e-3,
    "ent_coef": 0.01,
    "gamma": 0.99,
    "hidden_sizes": [128, 128],
    "evaluation_interval": 0,
    "self_play": {
        "snapshot_interval": 10,
        "opponent_sampling": "prioritized",
        "self_play_fraction": 0.4,
        "fixed_opponents": ["random", LOOKAHEAD],
        "fixed_opponent_fraction": 0.3,
    },
}


def steps_to_target(trainable, keys, budget_s: float) -> tuple[int | None, float, dict]:
    """Train until every key of the result reaches TARGET; env steps then (None if the budget ran out)."""
    start = time.perf_counter()
    result: dict = {}
    while time.perf_counter() - start < budget_s:
        result = trainable.train()
        values = [result.get(key(result) if callable(key) else key, float("nan")) for key in keys]
        if all(value >= TARGET for value in values):
            return result["timesteps_total"], time.perf_counter() - start, result
    return None, time.perf_counter() - start, result


def cartpole(budget_s: float, seed: int) -> None:
    """The multi-agent run gets twice the single-agent budget: it steps 4 CartPoles per env step."""
    single = PPO(config={"env": "CartPole-v1", "seed": seed, **CARTPOLE})
    single_steps, single_time, result = steps_to_target(single, ["episode_return_mean"], budget_s)
    single.stop()
    final = result["episode_return_mean"]
    print(f"single-agent: {single_steps} env steps, {single_time:.0f} s, return {final:.0f}")
    multi = MultiAgentPPO(
        config={
            "env": "rlsweep.trainables.envs.multi_agent_cartpole:MultiAgentCartPole",
            "env_config": {"num_agents": 4},
            "policy_mapping_fn": "per_agent",
            "seed": seed,
            **CARTPOLE,
        }
    )
    keys = [f"policies/agent_{i}/episode_return_mean" for i in range(4)]
    multi_steps, multi_time, result = steps_to_target(multi, keys, 2 * budget_s)
    multi.stop()
    returns = ", ".join(f"{result.get(key, float('nan')):.0f}" for key in keys)
    print(
        f"multi-agent: {multi_steps} env steps to target ({result['timesteps_total']} trained), "
        f"{multi_time:.0f} s, policies' returns {returns}"
    )
    ratio = multi_steps / single_steps if multi_steps and single_steps else float("nan")
    print("\n| run | env steps to 475 | wall s |\n|---|---|---|")
    print(f"| single-agent PPO, CartPole-v1 | {single_steps} | {single_time:.0f} |")
    print(f"| MultiAgentPPO, 4 CartPoles, 4 policies | {multi_steps} | {multi_time:.0f} |")
    print(f"| ratio (target <= 4) | {ratio:.2f} | |")


def tictactoe(budget_s: float, seed: int, games: int, fixed_fraction: float) -> None:
    self_play = {
        **TICTACTOE["self_play"],
        "fixed_opponent_fraction": fixed_fraction,
        "self_play_fraction": min(TICTACTOE["self_play"]["self_play_fraction"], 1.0 - fixed_fraction),
    }
    algo = MultiAgentPPO(config={**TICTACTOE, "self_play": self_play, "seed": seed})
    print(f"self_play: {self_play}")
    start = time.perf_counter()
    while time.perf_counter() - start < budget_s:
        result = algo.train()
    train_time = time.perf_counter() - start
    steps, iterations = result["timesteps_total"], result["training_iteration"]
    print(f"trained {steps} env steps, {iterations} iterations, {train_time:.0f} s")
    algo.evaluate()  # builds the evaluation worker
    worker, weights = algo.evaluation_worker, algo.sampling_weights()
    print("\n| opponent | learner plays | win | draw | loss |\n|---|---|---|---|---|")
    for name in ("random", "tictactoe_lookahead"):
        for first in (True, False):
            played = worker.play(weights, games, opponent=name, learner_first=first)
            rates = outcome_rates([e.outcome for e in played], "")
            side = "first" if first else "second"
            win, draw, loss = rates["win_rate"], rates["draw_rate"], rates["loss_rate"]
            print(f"| {name} | {side} | {win:.1%} | {draw:.1%} | {loss:.1%} |")
    algo.stop()


def spread(budget_s: float, seed: int, steps: int) -> None:
    """simple_spread_v3 (N=3, 25 cycles): shared PPO for `steps` env steps (or until `budget_s`),
    then MAPPO (the same, with its critic on the env's global state()) for as many env steps
    as shared PPO got; the greedy team return before and after, and the training team return."""
    rows = []
    for name, extra in (("shared PPO", {}), ("MAPPO (central_value)", {"central_value": True})):
        if rows:  # MAPPO: the env steps shared PPO reached, whatever the wall time
            steps, budget_s = rows[0][1], float("inf")
        algo = MultiAgentPPO(config={**SPREAD, **extra, "seed": seed})
        before = algo.evaluate()["evaluation/episode_return_mean"]
        start = time.perf_counter()
        result = {"timesteps_total": 0}
        while result["timesteps_total"] < steps and time.perf_counter() - start < budget_s:
            result = algo.train()
        wall = time.perf_counter() - start
        after = algo.evaluate()["evaluation/episode_return_mean"]
        training = result.get("episode_return_mean", float("nan"))
        rows.append((name, result["timesteps_total"], wall, before, after, training))
        algo.stop()
    print("\n| run | env steps | wall s | greedy team return: untrained | trained | training (last 100) |")
    print("|---|---|---|---|---|---|")
    for name, done, wall, before, after, training in rows:
        print(f"| {name} | {done} | {wall:.0f} | {before:.1f} | {after:.1f} | {training:.1f} |")


def main() -> None:
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", choices=["cartpole", "tictactoe", "spread"])
    parser.add_argument("--budget-s", type=float, default=300.0, help="wall-time cap per training run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--games", type=int, default=1000)
    parser.add_argument(
        "--fixed-fraction",
        type=float,
        default=0.3,
        help="tictactoe: chance a game's opponent is a fixed one (random or the lookahead)",
    )
    parser.add_argument("--steps", type=int, default=100_000, help="spread: env steps per run")
    args = parser.parse_args()
    if args.benchmark == "cartpole":
        cartpole(args.budget_s, args.seed)
    elif args.benchmark == "spread":
        spread(args.budget_s, args.seed, args.steps)
    else:
        tictactoe(args.budget_s, args.seed, args.games, args.fixed_fraction)


if __name__ == "__main__":
    main()
