"""Policies with attention memory: a small gated transformer (GTrXL, Parisotto et al. 2019)
over the last `memory` steps, in place of `recurrent.py`'s LSTM, for K seeds.

Each layer l keeps the inputs it saw at the last M = `memory` steps, m_l [M, D], and at step
t attends from its input x_t to [m_l; x_t] (pre-layer-norm, one learned bias per head and
step distance 0..M instead of position embeddings); GRU-type gates replace the residual
additions, biased at first towards passing x through (Parisotto's b_g = 2):

    y   = MultiHeadAttention(LN(x_t), LN([m_l; x_t]))
    x'  = gate(x_t, relu(y))
    out = gate(x', relu(MLP(LN(x'))))
    gate(x, y) = (1 - z) * x + z * tanh(W_g y + U_g (r * x)),
        r = sigmoid(W_r y + U_r x),  z = sigmoid(W_z y + U_z x - b_g)

The state a policy carries per env is "memory" [2, layers, M, D] (both towers' layer
inputs, oldest first) and "memory_valid" [M]: 1 where a slot holds a step of the current
episode. A reset zeroes both, so a new episode attends to nothing before its first step.
Over a training sequence of L steps, step t attends to exactly the M steps before it (the
stored memory, then the sequence's own earlier steps) and never across an episode start,
so learning sees what acting saw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from rlsweep.trainables.models.layers import PerSeedLinear
from rlsweep.trainables.models.networks import NetworkSpec
from rlsweep.trainables.models.recurrent import MemoryActorCritic, TensorState

GATE_BIAS = 2.0
"""b_g: a new gate passes its input x nearly unchanged (z = sigmoid(-2) = 0.12)."""


@dataclass(frozen=True)
class AttentionSpec:
    """The gated transformer an attention network adds, and what it reads besides the observation."""

    memory: int
    """M: past steps each step attends to."""
    dim: int
    num_heads: int
    num_layers: int
    prev_action_dim: int
    """Width of the previous action's features; 0 when it is not fed in."""
    prev_reward: bool


class PerSeedLayerNorm(nn.Module):
    """K independent layer norms over the last axis of [K, ..., D]."""

    def __init__(self, num_members: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_members, dim))
        self.bias = nn.Parameter(torch.zeros(num_members, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],)
        normed = F.layer_norm(x, x.shape[-1:])
        return normed * self.weight.view(shape) + self.bias.view(shape)


class GRUGate(nn.Module):
    """GTrXL's gate(x, y) (see the module docstring), for K members: [K, ..., D] twice -> [K, ..., D]."""

    def __init__(self, generators: Sequence[torch.Generator], dim: int):
        super().__init__()
        self.from_y = PerSeedLinear(generators, dim, 3 * dim, 1.0)  # W_r, W_z, W_g
        self.from_x = PerSeedLinear(generators, dim, 2 * dim, 1.0)  # U_r, U_z
        self.from_reset_x = PerSeedLinear(generators, dim, dim, 1.0)  # U_g
        with torch.no_grad():
            self.from_y.bias[..., dim : 2 * dim] = -GATE_BIAS

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y_r, y_z, y_g = self.from_y(y).chunk(3, -1)
        x_r, x_z = self.from_x(x).chunk(2, -1)
        reset, update = torch.sigmoid(y_r + x_r), torch.sigmoid(y_z + x_z)
        candidate = torch.tanh(y_g + self.from_reset_x(reset * x))
        return (1 - update) * x + update * candidate


class GatedTransformerLayer(nn.Module):
    """One GTrXL layer for K members: inputs x [K, B, L, D] attend to [memory; x] [K, B, M+L, D]."""

    def __init__(self, generators: Sequence[torch.Generator], spec: AttentionSpec):
        super().__init__()
        num_members, dim = len(generators), spec.dim
        self.num_heads = spec.num_heads
        self.attention_norm = PerSeedLayerNorm(num_members, dim)
        self.query = PerSeedLinear(generators, dim, dim, 1.0)
        self.key_value = PerSeedLinear(generators, dim, 2 * dim, 1.0)
        self.attention_out = PerSeedLinear(generators, dim, dim, 1.0)
        self.distance_bias = nn.Parameter(torch.zeros(num_members, spec.num_heads, spec.memory + 1))
        """A learned logit per head and step distance 0..M: where a key is, relative to the query."""
        self.attention_gate = GRUGate(generators, dim)
        self.mlp_norm = PerSeedLayerNorm(num_members, dim)
        self.mlp = nn.Sequential(
            PerSeedLinear(generators, dim, dim, math.sqrt(2)),
            nn.ReLU(),
            PerSeedLinear(generators, dim, dim, 1.0),
        )
        self.mlp_gate = GRUGate(generators, dim)

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, allowed: torch.Tensor, distance: torch.Tensor
    ) -> torch.Tensor:
        """x [K, B, L, D], memory [K, B, M, D], `allowed` [K, B, L, M+L] (which keys each
        query may read), `distance` [L, M+L] (steps from each key to each query, clamped to
        0..M) -> [K, B, L, D]."""
        length = x.shape[2]
        normed = self.attention_norm(torch.cat([memory, x], 2))  # [K, B, S=M+L, D]
        query = self.query(normed[:, :, -length:])
        key, value = self.key_value(normed).chunk(2, -1)

        def heads(t: torch.Tensor) -> torch.Tensor:  # [K, B, S, D] -> [K, B, heads, S, D / heads]
            return t.unflatten(-1, (self.num_heads, -1)).transpose(2, 3)

        bias = self.distance_bias[:, :, distance]  # [K, heads, L, S]
        logits_bias = bias.unsqueeze(1).masked_fill(~allowed.unsqueeze(2), -math.inf)  # [K, B, heads, L, S]
        attended = F.scaled_dot_product_attention(heads(query), heads(key), heads(value), logits_bias)
        y = self.attention_out(attended.transpose(2, 3).flatten(-2))  # [K, B, L, D]
        x = self.attention_gate(x, F.relu(y))
        return self.mlp_gate(x, F.relu(self.mlp(self.mlp_norm(x))))


def attention_masks(
    memory_valid: torch.Tensor, starts: torch.Tensor | None, length: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Which keys each query reads, over the M memory slots then the L steps of a sequence.

    `memory_valid` [K, B, M] (1: the slot holds a step of the episode the sequence starts
    in), `starts` [K, B, L] (None: no episode starts inside). Query t reads key j (j < M a
    memory slot, j = M + s the sequence's step s) when j is one of the M steps before t or
    t itself, holds a step, and belongs to t's episode. Returns `allowed` [K, B, L, M+L],
    `distance` [L, M+L] (t + M - j clamped to 0..M, for the distance bias) and the memory
    validity after the last step [K, B, M] (the last M keys that belong to its episode).
    """
    num_seeds, batch, size = memory_valid.shape
    device = memory_valid.device
    if starts is None and length == 1:  # one step, as when acting: every slot that holds a step
        holds_step = torch.cat(
            [memory_valid > 0.5, torch.ones(num_seeds, batch, 1, dtype=torch.bool, device=device)], -1
        )
        distance = torch.arange(size, -1, -1, device=device)[None]  # [1, M+1]
        return holds_step[:, :, None], distance, holds_step[:, :, 1:].to(memory_valid.dtype)
    if starts is None:
        starts = torch.zeros(num_seeds, batch, length, dtype=torch.bool, device=device)
    # Episode index of each key: memory slots are in the first episode, 0.
    episode = torch.cat(
        [torch.zeros(num_seeds, batch, size, dtype=torch.long, device=device), starts.long().cumsum(-1)], -1
    )  # [K, B, S]
    holds_step = torch.cat(
        [memory_valid > 0.5, torch.ones(num_seeds, batch, length, dtype=torch.bool, device=device)], -1
    )
    query_position = torch.arange(length, device=device)[:, None] + size  # [L, 1]
    offset = query_position - torch.arange(size + length, device=device)  # [L, S]: t + M - j
    window = (offset >= 0) & (offset <= size)
    same_episode = episode[:, :, None, :] == episode[:, :, size:, None]  # [K, B, L, S]
    allowed = window & holds_step[:, :, None, :] & same_episode
    next_valid = (holds_step & (episode == episode[:, :, -1:]))[:, :, -size:]
    return allowed, offset.clamp(0, size), next_valid.to(memory_valid.dtype)


class GatedTransformer(nn.Module):
    """GTrXL for K members: an input projection, then `num_layers` gated layers."""

    def __init__(self, generators: Sequence[torch.Generator], in_features: int, spec: AttentionSpec):
        super().__init__()
        self.embed = PerSeedLinear(generators, in_features, spec.dim, 1.0)
        self.layers = nn.ModuleList(GatedTransformerLayer(generators, spec) for _ in range(spec.num_layers))

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, allowed: torch.Tensor, distance: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x [K, B, L, in], memory [K, B, layers, M, D] -> outputs [K, B, L, D] and the
        memory after the last step (each layer's last M inputs)."""
        size = memory.shape[3]
        hidden = self.embed(x)
        following = []
        for index, layer in enumerate(self.layers):
            following.append(torch.cat([memory[:, :, index], hidden], 2)[:, :, -size:])
            hidden = layer(hidden, memory[:, :, index], allowed, distance)
        return hidden, torch.stack(following, 2)


class AttentionActorCritic(MemoryActorCritic):
    """`MemoryActorCritic` with a gated transformer core per tower; its state "memory"
    [K, N, 2, layers, M, D] and "memory_valid" [K, N, M]."""

    carried = ("memory", "memory_valid")

    def __init__(
        self,
        generators: Sequence[torch.Generator],
        spec: NetworkSpec,
        attention: AttentionSpec,
        param_dim: int,
        continuous: bool,
        log_std_init: float = 0.0,
    ):
        super().__init__(generators, spec, attention)
        self.spec = attention
        # Two transformers of K members each (not one of 2K, as the LSTMs' recurrence runs):
        # every parameter keeps the seed axis first, which per-seed gradient clipping reads.
        self.actor_transformer = GatedTransformer(generators, self.core_in_features, attention)
        self.critic_transformer = GatedTransformer(generators, self.core_in_features, attention)
        self.build_heads(generators, attention.dim, param_dim, continuous, log_std_init)

    def core_state_shapes(self) -> dict[str, tuple[int, ...]]:
        spec = self.spec
        return {"memory": (2, spec.num_layers, spec.memory, spec.dim), "memory_valid": (spec.memory,)}

    def core(
        self, x: torch.Tensor, memory: TensorState, starts: torch.Tensor | None
    ) -> tuple[torch.Tensor, TensorState]:
        allowed, distance, next_valid = attention_masks(memory["memory_valid"], starts, x.shape[2])
        actor_in, critic_in = x.unflatten(0, (2, -1))
        actor_out, actor_memory = self.actor_transformer(
            actor_in, memory["memory"][:, :, 0], allowed, distance
        )
        critic_out, critic_memory = self.critic_transformer(
            critic_in, memory["memory"][:, :, 1], allowed, distance
        )
        following = torch.stack([actor_memory, critic_memory], 2)  # [K, B, 2, layers, M, D]
        return torch.cat([actor_out, critic_out]), {"memory": following, "memory_valid": next_valid}
