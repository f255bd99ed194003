"""The settings every algorithm has: env, sampling, seeds, networks, evaluation."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from rlsweep.trainables.checkpoint import checkpoint_file
from rlsweep.trainables.config import ConfigError, check_range
from rlsweep.trainables.envs.names import EnvSource, EnvSpecifier, resolve_env
from rlsweep.trainables.seeds import SeedAggregate

Activation = Literal["tanh", "relu", "elu", "leaky_relu"]
"""Nonlinearities `rlsweep.trainables.models.layers.mlp` knows."""


@dataclass
class AlgorithmConfig:
    """Settings every algorithm has."""

    recurrent_models: ClassVar[bool] = False
    """Whether the algorithm trains policies with memory (`use_lstm`, `use_attention`)."""

    env: EnvSpecifier = "CartPole-v1"
    """A gymnasium id ("some.module:EnvId-v0" imports the module that registers it first), a
    gymnasium.Env class or factory ("some.module:Name", or the object itself), or a name
    registered with `ray.tune.registry.register_env`; see `rlsweep.trainables.envs.build`."""
    env_config: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of `gymnasium.make` for a gymnasium id (e.g. max_episode_steps); for
    a class, factory or register_env creator, its one argument (as an EnvContext); for Atari
    ids the preprocessing (`rlsweep.trainables.envs.atari.AtariConfig`)."""
    num_workers: int = 0
    """Rollout worker actors, one CPU each; 0 samples in the trainable's own process."""
    async_sampling: bool = True
    """With num_workers >= 1, workers sample the next rollout while the learner updates on
    the current one, so the learner learns from rollouts of the weights one update older
    than its own; false alternates sampling and learning and reproduces a seed's run exactly."""
    num_envs_per_worker: int = 8
    """Envs each worker steps per seed, all seeds' sharing one policy forward pass per step."""
    num_gpus: float = 0.0
    """GPUs for the learner; it falls back to the CPU when CUDA is not available."""
    seed: int = 0
    """The first seed value: it seeds the weights, envs and exploration of seed 0, so a config
    trains the same way twice."""
    num_seeds: int = 1
    """Independently seeded agents the trial trains side by side as one batched learner
    (see `rlsweep.trainables.seeds`); seed k's value is seed + k * SEED_STRIDE."""
    seed_aggregate: SeedAggregate = "mean"
    """How a metric's per-seed values become the one Tune reports (each seed's value is
    under seeds/<i>/<key> too): mean, median, iqm (interquartile mean) or min."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Units per hidden layer of each network."""
    activation: Activation = "tanh"
    """Nonlinearity between hidden layers."""
    cnn_channels: tuple[int, ...] = ()
    """Output channels of each convolution for image observations; empty: chosen from the
    image's size (the Nature DQN's from 36 pixels, small stride-1 kernels for smaller grids;
    see `rlsweep.trainables.models.encoders.CNNSpec.for_image`)."""
    cnn_kernels: tuple[int, ...] = ()
    """Kernel size of each convolution; empty: chosen from the image's size."""
    cnn_strides: tuple[int, ...] = ()
    """Stride of each convolution; empty: chosen from the image's size."""
    normalize_obs: bool = False
    """Standardize vector observations with running statistics (kept in checkpoints)."""
    use_lstm: bool = False
    """Give the policy memory: an LSTM between the encoder's hidden layers and the heads, for
    envs whose observations do not tell everything (velocities unseen, a cue seen once)."""
    lstm_cell_size: int = 64
    """Units of the LSTM's hidden and cell state."""
    max_seq_len: int = 20
    """Steps the learner backpropagates through time: each env's rollout is cut into
    sequences this long, each replayed from the memory its first step was sampled with."""
    lstm_use_prev_action: bool = False
    """Feed the LSTM (or the attention net) the previous action (one-hot when discrete) with
    the observation."""
    lstm_use_prev_reward: bool = False
    """Feed the LSTM (or the attention net) the previous reward with the observation."""
    use_attention: bool = False
    """Give the policy memory with attention instead: a small gated transformer (GTrXL) over
    the last `attention_memory` steps, where use_lstm puts the LSTM; trained on sequences
    of `max_seq_len` steps as the LSTM is."""
    attention_memory: int = 16
    """Past steps each step attends to (the attention net remembers nothing older)."""
    attention_dim: int = 64
    """Width of the transformer's embeddings."""
    attention_num_heads: int = 2
    """Attention heads per layer; must divide attention_dim."""
    attention_num_layers: int = 1
    """Gated transformer layers."""
    evaluation_interval: int = 5
    """Evaluate every this many iterations, starting with the first; 0 turns evaluation off."""
    evaluation_num_episodes: int = 10
    """Deterministic episodes per seed per evaluation, on envs separate from the workers."""
    max_worker_restarts: int = 3
    """Rollout workers the trial replaces (dead actor, failing env) before it fails itself."""
    restore_from: str | None = None
    """An rlsweep checkpoint of this algorithm to continue from (weights, optimizer state,
    counters) instead of starting from scratch; `rlsweep train --restore` sets it."""

    @functools.cached_property
    def env_source(self) -> EnvSource:
        """The env `env` names, resolved once per config (`validate` resolves it first)."""
        return resolve_env(self.env)

    @property
    def has_memory(self) -> bool:
        """Whether the policy carries a recurrent state (use_lstm or use_attention)."""
        return self.use_lstm or self.use_attention

    def validate(self) -> None:
        self.env_source  # noqa: B018 - resolving the env is its check
        check_range("num_workers", self.num_workers, 0)
        check_range("num_envs_per_worker", self.num_envs_per_worker, 1)
        check_range("num_gpus", self.num_gpus, 0)
        check_range("seed", self.seed, 0)
        check_range("num_seeds", self.num_seeds, 1)
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ConfigError(
                f"config key 'hidden_sizes' must list positive layer sizes, got {list(self.hidden_sizes)}"
            )
        cnn = [part for part in (self.cnn_channels, self.cnn_kernels, self.cnn_strides) if part]
        if len({len(part) for part in cnn}) > 1 or min(min(part) for part in cnn or [[1]]) < 1:
            raise ConfigError(
                "config keys 'cnn_channels', 'cnn_kernels' and 'cnn_strides' must list positive sizes, "
                f"one per convolution (or be left empty), got {[list(part) for part in cnn]}"
            )
        check_range("lstm_cell_size", self.lstm_cell_size, 1)
        check_range("max_seq_len", self.max_seq_len, 1)
        check_range("attention_memory", self.attention_memory, 1)
        check_range("attention_num_heads", self.attention_num_heads, 1)
        check_range("attention_num_layers", self.attention_num_layers, 1)
        check_range("attention_dim", self.attention_dim, 1)
        if self.attention_dim % self.attention_num_heads:
            raise ConfigError(
                f"config key 'attention_dim' ({self.attention_dim}) must be a multiple of "
                f"'attention_num_heads' ({self.attention_num_heads})"
            )
        if self.use_lstm and self.use_attention:
            raise ConfigError(
                "config keys 'use_lstm' and 'use_attention' are both true; a policy has one memory: "
                "set one of them to false"
            )
        algorithm = type(self).__name__.removesuffix("Config")
        for key in ("use_lstm", "use_attention"):
            if getattr(self, key) and not self.recurrent_models:
                raise ConfigError(
                    f"config key '{key}' is true, but {algorithm} cannot train recurrent policies; "
                    f"use PPO{' or DQN' if key == 'use_lstm' else ''}, or set {key}: false"
                )
        check_range("evaluation_interval", self.evaluation_interval, 0)
        check_range("max_worker_restarts", self.max_worker_restarts, 0)
        check_range("evaluation_num_episodes", self.evaluation_num_episodes, 1)
        if self.restore_from is not None:
            checkpoint_file(self.restore_from)
