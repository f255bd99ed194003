"""PPO on CartPole-v1: rlsweep against Stable-Baselines3, measured in the same run.

Every contender trains until the mean return of its last 20 episodes first reaches 475
(see benchmarks/race.py for how runs are timed).

    python benchmarks/ppo_cartpole.py --seeds 5

Contenders:
  rlsweep tuned            our CartPole settings, sampling in-process (num_workers=0)
  rlsweep tuned 1w sync    the same with one rollout worker actor (Ray), learner and worker
                           taking turns (async_sampling: false)
  rlsweep tuned 1w async   one worker sampling the next rollout while the learner updates
  rlsweep tuned 2w async   two workers, each rollout consumed as it arrives
  rlsweep zoo              our PPO with rl-baselines3-zoo's CartPole hyperparameters, exactly
                           (learning rate and clip range annealed to 0, as the zoo's lin_ schedules)
  sb3 zoo                  Stable-Baselines3 PPO with rl-baselines3-zoo's CartPole hyperparameters
"""

from __future__ import annotations

from race import Rlsweep, Run, run_race, train_sb3

ENV = "CartPole-v1"
TARGET = 475.0

RLSWEEP_TUNED = {
    "env": ENV,
    "num_envs_per_worker": 16,
    "rollout_length": 64,
    "num_epochs": 4,
    "minibatch_size": 256,
    "lr": 1e-3,
}
# rl-baselines3-zoo hyperparams/ppo.yml, CartPole-v1 (n_timesteps 1e5).
ZOO_TIMESTEPS = 100_000
ZOO = {
    "n_envs": 8,
    "n_steps": 32,
    "batch_size": 256,
    "gae_lambda": 0.8,
    "gamma": 0.98,
    "n_epochs": 20,
    "ent_coef": 0.0,
    "learning_rate": 1e-3,  # linear schedule to 0 over ZOO_TIMESTEPS
    "clip_range": 0.2,  # linear schedule to 0 over ZOO_TIMESTEPS
}
RLSWEEP_ZOO = {
    "env": ENV,
    "num_envs_per_worker": ZOO["n_envs"],
    "rollout_length": ZOO["n_steps"],
    "minibatch_size": ZOO["batch_size"],
    "gae_lambda": ZOO["gae_lambda"],
    "gamma": ZOO["gamma"],
    "num_epochs": ZOO["n_epochs"],
    "ent_coef": ZOO["ent_coef"],
    "lr": ZOO["learning_rate"],
    "lr_anneal_timesteps": ZOO_TIMESTEPS,
    "clip_range": ZOO["clip_range"],
    "clip_range_anneal_timesteps": ZOO_TIMESTEPS,
}


def linear_schedule(initial: float):
    return lambda progress_remaining: progress_remaining * initial


def sb3_zoo(contender: str, seed: int, max_steps: int) -> Run:
    def make_model():
        from stable_baselines3 import PPO
        from stable_baselines3.common.env_util import make_vec_env

        env = make_vec_env(ENV, n_envs=ZOO["n_envs"], seed=seed)
        # The zoo's "lin_1e-3" and "lin_0.2": linear decay to 0 over training.
        linear = {k: linear_schedule(ZOO[k]) for k in ("learning_rate", "clip_range")}
        params = {k: v for k, v in ZOO.items() if k != "n_envs"}
        return PPO("MlpPolicy", env, seed=seed, device="cpu", **{**params, **linear})

    return train_sb3(make_model, TARGET, seed, min(max_steps, ZOO_TIMESTEPS))


CONTENDERS = {
    "rlsweep tuned": Rlsweep("PPO", RLSWEEP_TUNED, TARGET),
    "rlsweep tuned 1w sync": Rlsweep(
        "PPO", {**RLSWEEP_TUNED, "num_workers": 1, "async_sampling": False}, TARGET
    ),
    "rlsweep tuned 1w async": Rlsweep("PPO", {**RLSWEEP_TUNED, "num_workers": 1}, TARGET),
    "rlsweep tuned 2w async": Rlsweep("PPO", {**RLSWEEP_TUNED, "num_workers": 2}, TARGET),
    "rlsweep zoo": Rlsweep("PPO", RLSWEEP_ZOO, TARGET),
    "sb3 zoo": sb3_zoo,
}

if __name__ == "__main__":
    run_race(__doc__, CONTENDERS, default_max_steps=300_000)
