"""A simulator that drives itself: it owns the loop and the clock, and calls the policy
server for actions, as a game engine, a factory model or a robot would.

It imports gymnasium for CartPole's physics only (not rlsweep's env API) and talks to the
server through rlsweep's PolicyClient:

    python cartpole_simulator.py --server http://127.0.0.1:PORT --token TOKEN --seed 0

`rlsweep sweep external_cartpole_ppo` launches it for every trial (its `simulator` key).
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym

from rlsweep.client import PolicyClient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="the policy server's address")
    parser.add_argument("--token", required=True, help="the trial's token")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--inference", choices=["remote", "local"], default="remote")
    parser.add_argument("--episodes", type=int, default=0, help="stop after this many (0: run until stopped)")
    parser.add_argument("--step-delay", type=float, default=0.0, help="seconds of wall clock per step")
    args = parser.parse_args()

    client = PolicyClient(args.server, inference=args.inference, token=args.token)
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=args.seed)
    played = 0
    while not args.episodes or played < args.episodes:
        episode = client.start_episode()
        done = False
        while not done:
            action = client.get_action(episode, obs)
            obs, reward, terminated, truncated, _ = env.step(action)
            client.log_returns(episode, reward)
            if args.step_delay:
                time.sleep(args.step_delay)
            done = terminated or truncated
        client.end_episode(episode, obs, truncated=truncated and not terminated)
        obs, _ = env.reset()
        played += 1


if __name__ == "__main__":
    main()
