"""Deep Q-Networks (Mnih et al. 2015) with the usual improvements as options: Double DQN
(van Hasselt et al. 2016), a dueling head (Wang et al. 2016) and n-step returns; with
`use_lstm`, recurrent DQN as R2D2 (Kapturowski et al. 2019): the replay buffer holds
sequences of `max_seq_len` steps with the LSTM state their first step was sampled with, and
the learner unrolls each from that state, its first `burn_in` steps only to warm the state up.

Workers act epsilon-greedily, epsilon decaying linearly with env steps; the learner
regresses Q(s, a) toward r + gamma^n max_a' Q_target(s', a') with the Huber loss on
batches replayed from the buffer, and moves the target network toward the online one
every `target_update_interval` env steps.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import gymnasium as gym
import torch
from torch import nn

from rlsweep.trainables.config import ConfigError, check_range
from rlsweep.trainables.learning.device import to_device
from rlsweep.trainables.learning.optim import adam, clip_grad_norm
from rlsweep.trainables.learning.sequence_buffer import SequenceReplayBuffer, Sequences
from rlsweep.trainables.models.distributions import masked_logits
from rlsweep.trainables.models.encoders import TensorObs
from rlsweep.trainables.models.observations import MASK_KEY, ObservationLayout
from rlsweep.trainables.models.policies import QPolicy
from rlsweep.trainables.models.recurrent import TensorState
from rlsweep.trainables.models.recurrent_q import RecurrentQNetwork
from rlsweep.trainables.off_policy import (
    Batch,
    OffPolicyAlgorithm,
    OffPolicyConfig,
    check_fits_memory,
    polyak_update,
)
from rlsweep.trainables.sampling.rollout import Rollout
from rlsweep.trainables.seeds import SeedMetrics


@dataclass
class DQNConfig(OffPolicyConfig):
    """DQN hyperparameters; defaults are tuned on CartPole-v1 (solved in about 30k steps)."""

    recurrent_models: ClassVar[bool] = True

    num_envs_per_worker: int = 4
    hidden_sizes: tuple[int, ...] = (128, 128)
    lr: float = 2.3e-3
    buffer_size: int = 100_000
    batch_size: int = 64
    learning_starts: int = 1000
    train_freq: int = 16
    gradient_steps: int = 16
    n_step: int = 3
    target_update_interval: int = 250
    """Env steps between target network updates (checked once per round)."""
    tau: float = 1.0
    """Target update rate: 1 copies the online network (classic DQN), < 1 is a Polyak average."""
    exploration_initial_eps: float = 1.0
    """Epsilon at the start of training."""
    exploration_final_eps: float = 0.01
    """Epsilon after `exploration_timesteps` env steps, and from then on."""
    exploration_timesteps: int = 5_000
    """Env steps over which epsilon decays linearly from its initial to its final value."""
    double_q: bool = True
    """Pick the next action with the online network, value it with the target (Double DQN)."""
    dueling: bool = False
    """Separate state-value and advantage streams in the Q network."""
    max_grad_norm: float = 10.0
    """Global gradient-norm clip."""
    burn_in: int | None = None
    """With use_lstm: the first steps of each replayed sequence of `max_seq_len`, unrolled
    (without gradients) only to bring the stored LSTM state up to date, not trained on;
    None: max_seq_len // 4."""

    @property
    def burn_in_steps(self) -> int:
        return self.max_seq_len // 4 if self.burn_in is None else self.burn_in

    def validate(self) -> None:
        if self.use_attention:
            raise ConfigError(
                "config key 'use_attention' is true, but DQN cannot train attention policies; "
                "use use_lstm, or PPO"
            )
        super().validate()
        if self.use_lstm:
            check_range("burn_in", self.burn_in_steps, 0)
            if self.burn_in_steps >= self.max_seq_len:
                raise ConfigError(
                    f"config key 'burn_in' ({self.burn_in_steps}) must be less than 'max_seq_len' "
                    f"({self.max_seq_len}), or no step of a sequence is trained on"
                )
            if self.dueling:
                raise ConfigError(
                    "config keys 'use_lstm' and 'dueling' are both true; recurrent DQN has no dueling head: "
                    "set dueling: false"
                )
        check_range("target_update_interval", self.target_update_interval, 1)
        check_range("tau", self.tau, 0, 1, low_inclusive=False)
        check_range("exploration_initial_eps", self.exploration_initial_eps, 0, 1)
        check_range("exploration_final_eps", self.exploration_final_eps, 0, 1)
        check_range("exploration_timesteps", self.exploration_timesteps, 1)
        check_range("max_grad_norm", self.max_grad_norm, 0, low_inclusive=False)


class DQN(OffPolicyAlgorithm):
    """DQN as a Tune Trainable: `tune.run(DQN, config={"env": "CartPole-v1"})`."""

    policy_class = QPolicy
    config_class = DQNConfig
    action_spaces = (gym.spaces.Discrete,)
    update_metrics = ("td_loss", "q_mean")
    policy: QPolicy

    @classmethod
    def check_spaces(
        cls, config: DQNConfig, observation_space: gym.spaces.Space, action_space: gym.spaces.Space
    ) -> None:
        super().check_spaces(config, observation_space, action_space)
        if config.use_lstm:
            # Sequences keep whole observations (images too: no frame store), max_seq_len + 1 of
            # them (with the previous action and reward, when fed) per max_seq_len - burn_in new
            # transitions, and the LSTM state once.
            layout = ObservationLayout.of(observation_space)
            per_step = 4 * (layout.vector_dim + layout.mask_dim + action_space.n + 1)
            if layout.image_shape is not None:
                per_step += math.prod(layout.image_shape)
            per_sequence = (config.max_seq_len + 1) * per_step + 8 * config.lstm_cell_size
            period = config.max_seq_len - config.burn_in_steps
            check_fits_memory(
                f"the replay buffer ({config.num_seeds} x {config.buffer_size} transitions in sequences)",
                config.num_seeds * config.buffer_size * per_sequence / period,
                "lower buffer_size",
            )

    def setup_learner(self) -> None:
        super().setup_learner()
        cfg = self.algo_config
        if cfg.use_lstm:
            period = cfg.max_seq_len - cfg.burn_in_steps
            self.replay_buffer = SequenceReplayBuffer(
                max(1, cfg.buffer_size // period),
                self.seeds,
                cfg.max_seq_len,
                period,
                RecurrentQNetwork.carried,
            )
        self.q_network = self.policy.network
        self.q_target = copy.deepcopy(self.q_network).requires_grad_(False)
        self.optimizer = adam(self.q_network.parameters(), self.algo_config.lr)
        self.optimizers = [self.optimizer]
        self.last_target_update = 0  # timesteps_total at the last target update

    def epsilon(self) -> float:
        """The exploration rate at the current env step: linear decay, then constant."""
        cfg = self.algo_config
        progress = min(1.0, self.timesteps_total / cfg.exploration_timesteps)
        return cfg.exploration_initial_eps + progress * (
            cfg.exploration_final_eps - cfg.exploration_initial_eps
        )

    def sampling_weights(self) -> dict[str, Any]:
        return {**self.policy.get_weights(), "epsilon": self.epsilon()}

    def learn(self, rollouts: list[Rollout]) -> SeedMetrics:
        cfg = self.algo_config
        if self.timesteps_total - self.last_target_update >= cfg.target_update_interval:
            polyak_update(self.q_target, self.q_network, cfg.tau)
            self.last_target_update = self.timesteps_total
        return super().learn(rollouts)

    def _batch(self, transitions: Any) -> Any:
        if not isinstance(transitions, Sequences):
            return super()._batch(transitions)
        return SequenceBatch(
            obs=self.policy.obs_tensors(transitions.obs),
            memory={key: to_device(value, self.device) for key, value in transitions.memory.items()},
            actions=to_device(transitions.actions, self.device).long(),
            rewards=to_device(transitions.rewards, self.device),
            terminated=to_device(transitions.terminated, self.device),
            ended=to_device(transitions.terminated | transitions.truncated, self.device),
            valid=to_device(transitions.valid, self.device),
        )

    def update(self, batch: Batch | SequenceBatch) -> dict[str, torch.Tensor]:
        cfg = self.algo_config
        if isinstance(batch, SequenceBatch):
            loss, q_mean = sequence_td_loss(
                self.q_network, self.q_target, batch, cfg.burn_in_steps, cfg.gamma, cfg.n_step, cfg.double_q
            )
            self.optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()
            clip_grad_norm(self.q_network.parameters(), cfg.max_grad_norm)
            self.optimizer.step()
            return {"td_loss": loss.detach(), "q_mean": q_mean}
        next_mask = batch.next_obs.get(MASK_KEY)
        with torch.no_grad():
            next_q_target = self.q_target(batch.next_obs)  # [K, B, num_actions]
            next_q_online = self.q_network(batch.next_obs) if cfg.double_q else next_q_target
            targets = double_q_target(
                batch.rewards,
                batch.discounts,
                batch.terminated,
                masked_logits(next_q_online, next_mask),
                next_q_target,
            )
        q = (
            self.q_network(batch.obs).gather(-1, batch.actions.long().unsqueeze(-1)).squeeze(-1)
        )  # Q(s, a), [K, B]
        loss = nn.functional.smooth_l1_loss(q, targets, reduction="none").mean(-1)  # [K]

        self.optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()  # seeds share no parameters: each gets its own gradient
        clip_grad_norm(self.q_network.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        return {"td_loss": loss.detach(), "q_mean": q.detach().mean(-1)}

    def step(self) -> dict[str, Any]:
        return {**super().step(), "epsilon": self.epsilon()}

    def learner_state(self) -> dict[str, Any]:
        return {
            **super().learner_state(),
            "q_target": self.q_target.state_dict(),
            "last_target_update": self.last_target_update,
        }

    def load_learner_state(self, state: dict[str, Any]) -> None:
        super().load_learner_state(state)
        self.q_target.load_state_dict(state["q_target"])
        self.last_target_update = state["last_target_update"]


def double_q_target(
    rewards: torch.Tensor,
    discounts: torch.Tensor,
    terminated: torch.Tensor,
    next_q_online: torch.Tensor,
    next_q_target: torch.Tensor,
) -> torch.Tensor:
    """The TD target r + gamma^n Q_target(s', argmax_a' Q_online(s', a')), 0-bootstrap at
    terminal s'; rewards, discounts, terminated [..., B], next Q-values [..., B, num_actions]
    (the online ones masked, where actions are, so the argmax is an allowed action).

    With `next_q_online` the online network's values this is Double DQN: the target network
    only evaluates the action, so one network's overestimated argmax is not also its
    estimate. Passing the target's own values gives classic DQN's max.
    """
    next_actions = next_q_online.argmax(-1, keepdim=True)
    next_value = next_q_target.gather(-1, next_actions).squeeze(-1)
    return rewards + discounts * (1 - terminated) * next_value


class SequenceBatch(NamedTuple):
    """Replayed sequences as learner tensors [K, B, L, ...]; `obs` and `memory` [K, B, L+1, ...]
    (see `Sequences`); `ended` true where an episode ended (terminated or truncated)."""

    obs: TensorObs  # normalized
    memory: TensorState
    actions: torch.Tensor  # long
    rewards: torch.Tensor
    terminated: torch.Tensor  # bool
    ended: torch.Tensor  # bool
    valid: torch.Tensor  # bool

    def rows(self, start: int, stop: int) -> SequenceBatch:
        """Every seed's sequences start..stop."""

        def part(value: Any) -> Any:
            if isinstance(value, dict):
                return {key: tensor[:, start:stop] for key, tensor in value.items()}
            return value[:, start:stop]

        return SequenceBatch(*(part(value) for value in self))


def sequence_td_loss(
    q_network: RecurrentQNetwork,
    q_target: RecurrentQNetwork,
    batch: SequenceBatch,
    burn_in: int,
    gamma: float,
    n_step: int,
    double_q: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """R2D2's loss per seed [K] (and the mean trained Q-value [K]): both networks unroll
    each sequence from its stored state; the first `burn_in` steps without gradients, only to
    update that state; every valid step after them regresses Q(h_t, a_t) toward its n-step
    double-Q target (`sequence_n_step` then `double_q_target`), bootstrapped from the
    networks' values at a later step of the same sequence. Autoreset steps and burn-in steps
    never enter the loss; the LSTM state is zeroed where an episode starts."""
    # starts[t]: the observation at t is an episode's first (step t-1 was the autoreset one);
    # never at t = 0, whose stored state already is the episode's.
    starts = torch.cat([torch.zeros_like(batch.valid[..., :1]), ~batch.valid], -1)  # [K, B, L+1]
    carried = {key: batch.memory[key][:, :, 0] for key in RecurrentQNetwork.carried}
    inputs = {key: value for key, value in batch.memory.items() if key not in RecurrentQNetwork.carried}

    def steps(values: dict[str, torch.Tensor], begin: int, end: int | None = None) -> dict[str, torch.Tensor]:
        return {key: value[:, :, begin:end] for key, value in values.items()}

    def warmed(network: RecurrentQNetwork) -> dict[str, torch.Tensor]:
        if burn_in == 0:
            return carried
        _, state = network.unroll(
            steps(batch.obs, 0, burn_in), {**carried, **steps(inputs, 0, burn_in)}, starts[..., :burn_in]
        )
        return state

    later = steps(batch.obs, burn_in)
    with torch.no_grad():
        target_q, _ = q_target.unroll(
            later, {**warmed(q_target), **steps(inputs, burn_in)}, starts[..., burn_in:]
        )
        online_state = warmed(q_network)
    q, _ = q_network.unroll(later, {**online_state, **steps(inputs, burn_in)}, starts[..., burn_in:])
    # q, target_q: [K, B, T+1, A] for the T = L - burn_in trained steps and the observation after.
    rewards, discounts, terminated, bootstrap = sequence_n_step(
        batch.rewards[..., burn_in:],
        batch.terminated[..., burn_in:],
        batch.ended[..., burn_in:],
        gamma,
        n_step,
    )
    with torch.no_grad():
        online = q.detach() if double_q else target_q
        action_mask = batch.obs.get(MASK_KEY)
        if action_mask is not None:
            online = masked_logits(online, action_mask[:, :, burn_in:])
        at = bootstrap.unsqueeze(-1).expand(*bootstrap.shape, q.shape[-1])
        targets = double_q_target(
            rewards, discounts, terminated.float(), online.gather(-2, at), target_q.gather(-2, at)
        )
    actions = batch.actions[..., burn_in:]
    chosen = q[:, :, :-1].gather(-1, actions.unsqueeze(-1)).squeeze(-1)  # [K, B, T]
    valid = batch.valid[..., burn_in:].to(chosen.dtype)
    errors = nn.functional.smooth_l1_loss(chosen, targets, reduction="none") * valid
    count = valid.sum((1, 2)).clamp(min=1)
    loss = errors.sum((1, 2)) / count
    q_mean = (chosen.detach() * valid).sum((1, 2)) / count
    return loss, q_mean


def sequence_n_step(
    rewards: torch.Tensor, terminated: torch.Tensor, ended: torch.Tensor, gamma: float, n: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """n-step returns inside sequences: rewards, terminated, ended [..., T] -> for each step t,
    the discounted sum of the rewards of steps t .. t+m-1, gamma^m, whether step t+m-1
    terminated, and the bootstrap index t+m (into observations [..., T+1]), where m <= n
    stops early at an episode's end or the sequence's."""
    length = rewards.shape[-1]
    steps = torch.arange(length, device=rewards.device)
    active = torch.ones_like(ended)
    returns = torch.zeros_like(rewards)
    taken = torch.zeros_like(steps).expand_as(rewards).clone()
    for i in range(n):
        inside = steps + i < length
        index = (steps + i).clamp(max=length - 1).expand_as(rewards)
        active = active & inside
        returns = returns + active * gamma**i * rewards.gather(-1, index)
        taken = taken + active.long()
        active = active & ~ended.gather(-1, index)
    last = steps + taken - 1
    discounts = torch.full_like(rewards, gamma) ** taken
    return returns, discounts, terminated.gather(-1, last), steps + taken
