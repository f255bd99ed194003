"""Proximal Policy Optimization (Schulman et al. 2017), clipped-surrogate variant.

Workers collect `rollout_length` steps from each of their envs with the current policy;
the learner computes GAE advantages and runs `num_epochs` passes of minibatch updates on
the clipped objective below, for every seed at once: each seed's minibatches are its
own samples in its own shuffled order, its advantages are normalized over its own
minibatch, and its gradient is clipped by its own norm.

With `use_lstm` or `use_attention` the samples are sequences of `max_seq_len` steps instead of single steps
(`learning/sequences.py`): a minibatch holds whole sequences, each unrolled from the
recurrent state its first step was sampled with, and padded steps are masked out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from rlsweep.trainables.algorithm import Algorithm
from rlsweep.trainables.algorithm_config import AlgorithmConfig
from rlsweep.trainables.config import ConfigError, check_range
from rlsweep.trainables.learning.advantages import compute_gae
from rlsweep.trainables.learning.device import to_device
from rlsweep.trainables.learning.optim import adam, clip_grad_norm
from rlsweep.trainables.learning.sequences import episode_starts, to_sequences
from rlsweep.trainables.models.distributions import ACTION_SPACES
from rlsweep.trainables.models.observations import MASK_KEY
from rlsweep.trainables.models.policies import ActorCriticPolicy
from rlsweep.trainables.sampling.rollout import Rollout
from rlsweep.trainables.seeds import SeedMetrics

MINIBATCH_KEYS = ("obs", "actions", "logprob", "advantages", "returns", "valid")
"""What a minibatch update reads from the batch (not the values, only the statistics do)."""
SEQUENCE_KEYS = ("memory", "starts")
"""What a recurrent policy's update reads besides: the state and where episodes start."""


@dataclass
class PPOConfig(AlgorithmConfig):
    """PPO hyperparameters; defaults follow CleanRL's classic-control settings."""

    recurrent_models: ClassVar[bool] = True

    rollout_length: int = 128
    """Steps per env per iteration; the batch is max(1, num_workers) * num_envs_per_worker * this
    (asynchronous sampling may add a fast worker's extra rollouts to it)."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE bias-variance trade-off: 0 is one-step TD, 1 is Monte Carlo."""
    lr: float = 3e-4
    """Adam learning rate."""
    lr_anneal_timesteps: int | None = None
    """If set, the learning rate decays linearly to 0 over this many env steps."""
    num_epochs: int = 4
    """Passes over each batch."""
    minibatch_size: int = 256
    """Steps per gradient step (per seed); must not exceed the batch."""
    clip_range: float = 0.2
    """PPO's epsilon: how far the probability ratio may move before the objective stops rewarding it."""
    clip_range_anneal_timesteps: int | None = None
    """If set, the clip range decays linearly to 0 over this many env steps (as SB3's schedules)."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    normalize_advantages: bool = True
    """Standardize advantages within each minibatch."""

    def validate(self) -> None:
        super().validate()
        check_range("rollout_length", self.rollout_length, 1)
        check_range("gamma", self.gamma, 0, 1, low_inclusive=False)
        check_range("gae_lambda", self.gae_lambda, 0, 1)
        check_range("lr", self.lr, 0, low_inclusive=False)
        check_range("lr_anneal_timesteps", self.lr_anneal_timesteps, 1)
        check_range("num_epochs", self.num_epochs, 1)
        check_range("minibatch_size", self.minibatch_size, 2)
        check_range("clip_range", self.clip_range, 0, low_inclusive=False)
        check_range("clip_range_anneal_timesteps", self.clip_range_anneal_timesteps, 1)
        check_range("vf_coef", self.vf_coef, 0)
        check_range("ent_coef", self.ent_coef, 0)
        check_range("max_grad_norm", self.max_grad_norm, 0, low_inclusive=False)
        if self.has_memory and self.max_seq_len > self.rollout_length:
            raise ConfigError(
                f"config key 'max_seq_len' ({self.max_seq_len}) must not exceed 'rollout_length' "
                f"({self.rollout_length}): sequences are cut from one rollout"
            )
        if self.minibatch_size > self.batch_size:
            raise ConfigError(
                f"config key 'minibatch_size' ({self.minibatch_size}) must not exceed the batch size "
                f"max(1, num_workers) * num_envs_per_worker * rollout_length = {self.batch_size}"
            )

    @property
    def batch_size(self) -> int:
        return max(1, self.num_workers) * self.num_envs_per_worker * self.rollout_length


class PPO(Algorithm):
    """PPO as a Tune Trainable: `tune.run(PPO, config={"env": "CartPole-v1"})`."""

    policy_class = ActorCriticPolicy
    config_class = PPOConfig
    action_spaces = ACTION_SPACES
    policy: ActorCriticPolicy

    def setup_learner(self) -> None:
        self.optimizer = adam(self.policy.network.parameters(), self.algo_config.lr, eps=1e-5)

    def rollout_steps(self) -> int:
        return self.algo_config.rollout_length

    def annealed(self, value: float, anneal_timesteps: int | None) -> float:
        """`value` decayed linearly to 0 over `anneal_timesteps` env steps, if set."""
        if anneal_timesteps is None:
            return value
        return value * max(0.0, 1.0 - self.timesteps_total / anneal_timesteps)

    def learn(self, rollouts: list[Rollout]) -> SeedMetrics:
        cfg = self.algo_config
        batch = self._batch(rollouts)
        network = self.policy.network
        lr = self.annealed(cfg.lr, cfg.lr_anneal_timesteps)
        clip_range = self.annealed(cfg.clip_range, cfg.clip_range_anneal_timesteps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

        recurrent = self.policy.recurrent
        keys = MINIBATCH_KEYS + SEQUENCE_KEYS if recurrent else MINIBATCH_KEYS
        num_seeds, num_samples = batch["valid"].shape[:2]  # samples: steps, or sequences when recurrent
        steps_per_sample = cfg.max_seq_len if recurrent else 1
        num_minibatches = min(num_samples, max(1, num_samples * steps_per_sample // cfg.minibatch_size))
        rows = torch.arange(num_seeds, device=self.device)[:, None]  # [K, 1] picks each seed's samples
        stats: list[torch.Tensor] = []  # [5, K] per minibatch, read once at the end
        for _ in range(cfg.num_epochs):
            order = torch.stack(
                [
                    torch.randperm(num_samples, generator=g, device=self.device)
                    for g in self.learner_generators
                ]
            )  # [K, M]: each seed shuffles its own samples
            for index in order.tensor_split(num_minibatches, dim=1):  # [K, B]
                mb = {key: _take(batch[key], rows, index) for key in keys}
                loss, minibatch_stats = self.minibatch_loss(mb, clip_range)  # [K]
                self.optimizer.zero_grad(set_to_none=True)
                loss.sum().backward()  # seeds share no parameters: each gets its own gradient
                clip_grad_norm(network.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                stats.append(minibatch_stats)

        # Statistics move only after the update, so the update saw what the workers saw.
        for rollout in rollouts:
            self._update_normalizer(rollout)
        policy_loss, value_loss, entropy, approx_kl, clip_fraction = torch.stack(stats).mean(0).cpu().numpy()
        return {
            "policy_loss": policy_loss,
            "value_loss": value_loss,
            "entropy": entropy,
            "approx_kl": approx_kl,
            "clip_fraction": clip_fraction,
            "lr": np.full(num_seeds, lr),
            "clip_range": np.full(num_seeds, clip_range),
            "explained_variance": explained_variance(
                batch["values"].flatten(1), batch["returns"].flatten(1), batch["valid"].flatten(1)
            ),
        }

    def minibatch_loss(self, mb: dict[str, Any], clip_range: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss [K] of a minibatch of samples [K, B, ...] (whole sequences [K, B, L, ...]
        for a recurrent policy), and its statistics [5, K]: policy and value loss, entropy,
        approximate KL and clip fraction. Invalid steps (autoresets, padding) add nothing."""
        cfg = self.algo_config
        network, head = self.policy.network, self.policy.head
        if self.policy.recurrent:
            params, values, _ = network.unroll(mb["obs"], mb["memory"], mb["starts"])
            # From here on every step of every sequence is one sample: [K, B*L, ...].
            params, values = params.flatten(1, 2), values.flatten(1, 2)
            mb = {key: _flatten_sequences(mb[key]) for key in MINIBATCH_KEYS}
        else:
            params, values = network.policy_params_and_value(mb["obs"])
        valid = mb["valid"]
        mask = mb["obs"].get(MASK_KEY)
        logprob = head.log_prob(params, mb["actions"], mask)
        entropy = masked_mean(head.entropy(params, mask), valid)
        advantages = mb["advantages"]
        if cfg.normalize_advantages:
            advantages = normalize(advantages, valid)
        policy_loss, approx_kl, clip_fraction = clipped_surrogate_loss(
            logprob, mb["logprob"], advantages, valid, clip_range
        )
        value_loss = 0.5 * masked_mean((values - mb["returns"]).pow(2), valid)
        loss = policy_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy  # [K]
        return loss, torch.stack([policy_loss, value_loss, entropy, approx_kl, clip_fraction]).detach()

    def _update_normalizer(self, rollout: Rollout) -> None:
        if "vector" not in rollout.obs:
            return
        for seed_index in range(self.algo_config.num_seeds):
            valid = rollout.valid[:, seed_index]
            self.policy.normalizer.update(seed_index, rollout.obs["vector"][:-1, seed_index][valid])

    @torch.no_grad()
    def _batch(self, rollouts: list[Rollout]) -> dict[str, Any]:
        """Every rollout's steps as learner tensors [K, M, ...] (M = steps per seed, autoreset
        steps kept but marked invalid), with GAE targets: the iteration's one copy to the
        learner's device, which the minibatches index there. For a recurrent policy the
        samples are sequences [K, M, L, ...] (see `learning/sequences.py`), with the memory
        they were sampled with and where episodes start in them."""
        cfg = self.algo_config
        recurrent = self.policy.recurrent
        carried = self.policy.network.carried if recurrent else ()
        parts: dict[str, list[np.ndarray]] = {
            k: [] for k in ("actions", "logprob", "values", "advantages", "returns", "valid")
        }
        if recurrent:
            parts["starts"] = []
        observations: list[dict[str, np.ndarray]] = []
        memories: list[dict[str, np.ndarray]] = []

        def samples(array: np.ndarray) -> np.ndarray:  # [T, K, N, ...] -> the learner's samples
            return to_sequences(array, cfg.max_seq_len) if recurrent else _seeds_first(array)

        for rollout in rollouts:
            values = rollout.extras["value"]  # [T, K, N]
            last_obs = {key: value[-1] for key, value in rollout.obs.items()}
            last_memory = {key: value[-1] for key, value in rollout.memory.items()}
            _, last_value, _ = self.policy.params_and_value(self.policy.obs_tensors(last_obs), last_memory)
            last_value = last_value.cpu().numpy()  # [K, N]
            next_values = np.concatenate([values[1:], last_value[None]])  # V(s_{t+1}), [T, K, N]
            advantages, returns = compute_gae(
                rollout.rewards,
                values,
                next_values,
                rollout.terminated,
                rollout.truncated,
                cfg.gamma,
                cfg.gae_lambda,
            )
            for key, array in (
                ("actions", rollout.actions),
                ("logprob", rollout.extras["logprob"]),
                ("values", values),
                ("advantages", advantages),
                ("returns", returns),
                ("valid", rollout.valid),
            ):
                parts[key].append(samples(array))
            if recurrent:
                parts["starts"].append(samples(episode_starts(rollout.valid)))
            observations.append({key: samples(value[:-1]) for key, value in rollout.obs.items()})
            memories.append(
                {  # the core's state is read at a sequence's first step only: keep that one
                    key: to_sequences(value[: -1 : cfg.max_seq_len], 1)
                    if key in carried
                    else samples(value[:-1])
                    for key, value in rollout.memory.items()
                }
            )
        batch: dict[str, Any] = {
            key: to_device(np.concatenate(arrays, axis=1), self.device) for key, arrays in parts.items()
        }
        batch["obs"] = self.policy.obs_tensors(
            {key: np.concatenate([obs[key] for obs in observations], axis=1) for key in observations[0]}
        )
        batch["memory"] = {
            key: to_device(np.concatenate([memory[key] for memory in memories], axis=1), self.device)
            for key in memories[0]
        }
        return batch

    def learner_state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def load_learner_state(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])


def _seeds_first(array: np.ndarray) -> np.ndarray:
    """[T, K, N, ...] -> [K, T*N, ...]: each seed's steps in one row."""
    steps, num_seeds, envs = array.shape[:3]
    return np.swapaxes(array, 0, 1).reshape(num_seeds, steps * envs, *array.shape[3:])


def _flatten_sequences(value: Any) -> Any:
    """Sequences [K, B, L, ...] (or a dict of them) as steps [K, B*L, ...]."""
    if isinstance(value, dict):
        return {key: tensor.flatten(1, 2) for key, tensor in value.items()}
    return value.flatten(1, 2)


def _take(value: Any, rows: torch.Tensor, index: torch.Tensor) -> Any:
    """Each seed's samples `index` [K, B] from a tensor [K, M, ...] (or a dict of them)."""
    if isinstance(value, dict):
        return {key: tensor[rows, index] for key, tensor in value.items()}
    return value[rows, index]


def masked_mean(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """The mean of x [K, B] over each seed's valid entries: [K]."""
    weights = valid.float()
    return (x * weights).sum(-1) / weights.sum(-1).clamp(min=1.0)


def normalize(advantages: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Standardize [K, B] per seed over its valid entries (unbiased std, as torch.std)."""
    mean = masked_mean(advantages, valid)[:, None]
    weights = valid.float()
    variance = ((advantages - mean).pow(2) * weights).sum(-1) / (weights.sum(-1) - 1).clamp(min=1.0)
    return (advantages - mean) / (variance.sqrt()[:, None] + 1e-8)


def clipped_surrogate_loss(
    logprob: torch.Tensor,
    old_logprob: torch.Tensor,
    advantages: torch.Tensor,
    valid: torch.Tensor,
    clip_range: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PPO's clipped objective as a loss, plus the approximate KL and clip fraction; inputs
    [K, B], outputs [K] (means over each seed's valid steps).

    The loss takes the pessimistic (larger) of the unclipped and clipped terms, so moving the
    probability ratio outside [1 - clip, 1 + clip] earns nothing.
    """
    log_ratio = logprob - old_logprob
    ratio = log_ratio.exp()
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1 - clip_range, 1 + clip_range)
    loss = masked_mean(torch.max(unclipped, clipped), valid)
    with torch.no_grad():
        approx_kl = masked_mean((ratio - 1) - log_ratio, valid)  # KL(old || new), Schulman's low-variance k3
        clip_fraction = masked_mean(((ratio - 1).abs() > clip_range).float(), valid)
    return loss, approx_kl, clip_fraction


def explained_variance(predicted: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> np.ndarray:
    """1 - Var[target - predicted] / Var[target] per seed over valid steps: 1 is a perfect
    critic, <= 0 is useless; [K] (NaN where the targets do not vary)."""
    weights = valid.float()

    def variance(x: torch.Tensor) -> torch.Tensor:
        mean = masked_mean(x, valid)[:, None]
        return ((x - mean).pow(2) * weights).sum(-1) / weights.sum(-1).clamp(min=1.0)

    target_variance = variance(target)
    ratio = variance(target - predicted) / target_variance
    return torch.where(target_variance > 0, 1 - ratio, torch.nan).cpu().numpy()
