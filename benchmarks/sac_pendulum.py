"""SAC on Pendulum-v1: rlsweep against Stable-Baselines3, measured in the same run.

Every contender trains until the mean return of its last 20 training episodes first
reaches -200 (see benchmarks/race.py for how runs are timed).

    python benchmarks/sac_pendulum.py --seeds 3

Contenders:
  rlsweep tuned      our Pendulum settings, sampling in-process (num_workers=0)
  rlsweep tuned 1w sync  the same with one rollout worker actor (Ray), learner and worker
                     taking turns (async_sampling: false)
  rlsweep tuned 1w async  one worker filling the buffer while the learner takes its
                     gradient steps (the ratio of gradient steps to env steps kept on average)
  rlsweep zoo        our SAC with rl-baselines3-zoo's Pendulum hyperparameters
  sb3 zoo            Stable-Baselines3 SAC with rl-baselines3-zoo's Pendulum hyperparameters
"""

from __future__ import annotations

from race import Rlsweep, Run, run_race, train_sb3

ENV = "Pendulum-v1"
TARGET = -200.0

RLSWEEP_TUNED = {
    "num_envs_per_worker": 4,
    "gradient_steps": 4,  # one per env step, as SB3's train_freq=1, gradient_steps=1
    "hidden_sizes": (64, 64),
    "lr": 1e-3,
    "tau": 0.01,
}
# rl-baselines3-zoo hyperparams/sac.yml, Pendulum-v1: n_timesteps 2e4, learning_rate 1e-3,
# SB3's defaults otherwise (buffer 1e6, batch 256, tau 0.005, gamma 0.99, train_freq 1,
# gradient_steps 1, learning_starts 100, net_arch [256, 256], automatic entropy tuning).
ZOO_TIMESTEPS = 20_000
ZOO = {"learning_rate": 1e-3}
RLSWEEP_ZOO = {
    "num_envs_per_worker": 1,
    "lr": ZOO["learning_rate"],
    "buffer_size": 1_000_000,
    "batch_size": 256,
    "tau": 0.005,
    "gamma": 0.99,
    "train_freq": 1,
    "gradient_steps": 1,
    "learning_starts": 100,
    "hidden_sizes": (256, 256),
    "activation": "relu",
}

# An iteration per episode length: the target can only be reached when episodes end.
PER_EPISODE = {"env": ENV, "timesteps_per_iteration": 200}


def sb3_zoo(contender: str, seed: int, max_steps: int) -> Run:
    def make_model():
        from stable_baselines3 import SAC

        return SAC("MlpPolicy", ENV, seed=seed, device="cpu", **ZOO)

    return train_sb3(make_model, TARGET, seed, min(max_steps, ZOO_TIMESTEPS))


CONTENDERS = {
    "rlsweep tuned": Rlsweep("SAC", {**RLSWEEP_TUNED, **PER_EPISODE}, TARGET),
    "rlsweep tuned 1w sync": Rlsweep(
        "SAC", {**RLSWEEP_TUNED, **PER_EPISODE, "num_workers": 1, "async_sampling": False}, TARGET
    ),
    "rlsweep tuned 1w async": Rlsweep("SAC", {**RLSWEEP_TUNED, **PER_EPISODE, "num_workers": 1}, TARGET),
    "rlsweep zoo": Rlsweep("SAC", {**RLSWEEP_ZOO, **PER_EPISODE}, TARGET),
    "sb3 zoo": sb3_zoo,
}

if __name__ == "__main__":
    run_race(__doc__, CONTENDERS, default_max_steps=20_000)
