"""Policies with memory: an LSTM between the encoder's torso and the heads, for K seeds.

The recurrent state a policy carries from step to step is a dict of arrays [K, N, ...], one
row per env (`RecurrentState`): the actor's and critic's LSTM states, "hidden" and "cell"
[K, N, 2, H], and, when the config asks for them, the previous step's "prev_action"
(as features: one-hot for discrete actions) and "prev_reward". Every entry is zero at an
episode's start. Workers store the state each step's action was chosen with in the rollout
(`Rollout.memory`), so the learner replays a sequence from the state its first step saw
(truncated backpropagation through time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlsweep.trainables.models.encoders import Encoder, TensorObs
from rlsweep.trainables.models.layers import PerSeedLinear, mlp
from rlsweep.trainables.models.networks import NetworkSpec

RecurrentState = dict[str, np.ndarray]
"""What a policy remembers, by name, each [K, N, ...]; empty for a memoryless policy."""
TensorState = dict[str, torch.Tensor]


class MemoryInputs(Protocol):
    """What a network with memory reads besides the observation."""

    @property
    def prev_action_dim(self) -> int: ...
    @property
    def prev_reward(self) -> bool: ...


@dataclass(frozen=True)
class LSTMSpec:
    """The LSTM a recurrent network adds, and what it reads besides the observation."""

    cell_size: int
    prev_action_dim: int
    """Width of the previous action's features; 0 when it is not fed in."""
    prev_reward: bool


def action_feature_dim(space: gym.spaces.Space) -> int:
    """Width of `action_features` for actions of `space`."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return int(space.nvec.sum())
    return int(np.prod(space.shape))


def action_features(space: gym.spaces.Space, actions: np.ndarray) -> np.ndarray:
    """The policy's actions [K, N, ...] (as it sampled them) as float32 features [K, N, D]:
    one-hot for Discrete and MultiDiscrete, the values themselves otherwise."""
    if isinstance(space, gym.spaces.Discrete):
        return np.eye(int(space.n), dtype=np.float32)[actions]
    if isinstance(space, gym.spaces.MultiDiscrete):
        return np.concatenate(
            [np.eye(int(n), dtype=np.float32)[actions[..., i]] for i, n in enumerate(space.nvec)], -1
        )
    return actions.reshape(*actions.shape[:2], -1).astype(np.float32)


class PerSeedLSTM(nn.Module):
    """K independent LSTMs (torch.nn.LSTM's math, one layer): inputs [K, B, L, in] and a
    state (h, c) [K, B, H] -> outputs [K, B, L, H] and the state after the last step.
    Orthogonal weights, zero biases, as CleanRL's PPO-LSTM."""

    def __init__(self, generators: Sequence[torch.Generator], in_features: int, hidden_size: int):
        super().__init__()
        num_seeds = len(generators)
        self.weight_ih = nn.Parameter(torch.empty(num_seeds, in_features, 4 * hidden_size))
        self.weight_hh = nn.Parameter(torch.empty(num_seeds, hidden_size, 4 * hidden_size))
        self.bias = nn.Parameter(torch.zeros(num_seeds, 1, 4 * hidden_size))
        with torch.no_grad():
            for seed_index, generator in enumerate(generators):
                for weight, fan_in in ((self.weight_ih, in_features), (self.weight_hh, hidden_size)):
                    matrix = torch.empty(4 * hidden_size, fan_in)  # torch's LSTM layout
                    nn.init.orthogonal_(matrix, 1.0, generator=generator)
                    weight[seed_index] = matrix.T

    def input_gates(self, x: torch.Tensor) -> torch.Tensor:
        """The input's share of the gates, for every step at once: [K, B, L, in] -> [K, B, L, 4H]."""
        _, batch, length, _ = x.shape
        return torch.baddbmm(self.bias, x.flatten(1, 2), self.weight_ih).unflatten(1, (batch, length))

    def forward(
        self, x: torch.Tensor, hidden: torch.Tensor, cell: torch.Tensor, keep: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`keep` [K, B, L, 1] is 0 before the steps whose state starts afresh (an episode's
        first), 1 elsewhere; None when no step's does."""
        return lstm_recurrence(self.input_gates(x), self.weight_hh, hidden, cell, keep)


def lstm_recurrence(
    input_gates: torch.Tensor,
    weight_hh: torch.Tensor,
    hidden: torch.Tensor,
    cell: torch.Tensor,
    keep: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The sequential part of M LSTMs: input gates [M, B, L, 4H] (torch's gate order i, f,
    g, o), recurrent weights [M, H, 4H], the state (hidden, cell) [M, B, H] and `keep`
    [M, B, L, 1] (0 resets the state before that step; None when no step does) -> outputs
    [M, B, L, H] and the state after the last step.

    With gradients, backpropagation through time runs as one autograd node with the
    gradient written out (`LSTMRecurrence`): autograd's bookkeeping of a dozen tiny ops per
    step cost more than their arithmetic."""
    if torch.is_grad_enabled() and any(t.requires_grad for t in (input_gates, weight_hh, hidden, cell)):
        return LSTMRecurrence.apply(input_gates, weight_hh, hidden, cell, keep)
    outputs, hidden, cell, _ = _lstm_steps(input_gates, weight_hh, hidden, cell, keep, save=False)
    return outputs, hidden, cell


def _lstm_steps(
    input_gates: torch.Tensor,
    weight_hh: torch.Tensor,
    hidden: torch.Tensor,
    cell: torch.Tensor,
    keep: torch.Tensor | None,
    save: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
    """`lstm_recurrence`'s loop; with `save`, also what its gradient needs, each [M, B, L, ...]:
    the gates' activations (the candidate's as sigmoid(2g), tanh(g) = 2 sigmoid(2g) - 1, so
    one sigmoid serves all four), the state each step started from (after resets) and
    tanh of each step's cell."""
    size = weight_hh.shape[1]
    # Doubling the candidate's pre-activation lets one sigmoid per step compute every gate.
    scale = torch.ones(4 * size, dtype=input_gates.dtype, device=input_gates.device)
    scale[2 * size : 3 * size] = 2.0
    input_gates, weight_hh = input_gates * scale, weight_hh * scale
    outputs, activations, hiddens, cells, tanh_cells = [], [], [], [], []
    for t in range(input_gates.shape[2]):
        if keep is not None:
            hidden, cell = hidden * keep[:, :, t], cell * keep[:, :, t]
        gates = torch.baddbmm(input_gates[:, :, t], hidden, weight_hh).sigmoid_()
        input_gate, forget_gate, candidate, output_gate = gates.chunk(4, -1)
        if save:
            activations.append(gates)
            hiddens.append(hidden)
            cells.append(cell)
        cell = torch.addcmul(forget_gate * cell, input_gate, candidate * 2 - 1)
        tanh_cell = torch.tanh(cell)
        hidden = output_gate * tanh_cell
        outputs.append(hidden)
        tanh_cells.append(tanh_cell)
    saved = tuple(torch.stack(part, 2) for part in (activations, hiddens, cells, tanh_cells)) if save else ()
    return torch.stack(outputs, 2), hidden, cell, saved


class LSTMRecurrence(torch.autograd.Function):
    """`lstm_recurrence` with its backward pass written out. Per step t, going back, with
    dh, dc the gradients reaching the step's hidden and cell outputs:

        dc     += dh * o * (1 - tanh(c)^2)
        dgates  = [dc * g * i(1-i), dc * c_prev * f(1-f), dc * i * (1-g^2), dh * tanh(c) * o(1-o)]
        dh_prev = keep * dgates @ W_hh^T,   dc_prev = keep * dc * f

    and dW_hh = sum over steps of h_prev^T @ dgates, as one batched matmul at the end."""

    @staticmethod
    def forward(
        ctx: Any,
        input_gates: torch.Tensor,
        weight_hh: torch.Tensor,
        hidden: torch.Tensor,
        cell: torch.Tensor,
        keep: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        outputs, hidden, cell, saved = _lstm_steps(input_gates, weight_hh, hidden, cell, keep, save=True)
        ctx.save_for_backward(weight_hh, keep if keep is not None else torch.empty(0), *saved)
        ctx.has_keep = keep is not None
        return outputs, hidden, cell

    @staticmethod
    def backward(
        ctx: Any, grad_outputs: torch.Tensor, grad_hidden: torch.Tensor, grad_cell: torch.Tensor
    ) -> tuple[torch.Tensor | None, ...]:
        weight_hh, keep, activations, hiddens, cells, tanh_cells = ctx.saved_tensors
        input_gate, forget_gate, candidate, output_gate = activations.chunk(4, -1)
        candidate = candidate * 2 - 1  # back to tanh(g)
        # Everything that does not depend on the gradient flowing back, for all steps at once.
        output_term = output_gate * (1 - tanh_cells * tanh_cells)  # [M, B, L, H]
        factors = torch.cat(
            [
                candidate * input_gate * (1 - input_gate),
                cells * forget_gate * (1 - forget_gate),
                input_gate * (1 - candidate * candidate),
                tanh_cells * output_gate * (1 - output_gate),
            ],
            -1,
        )  # [M, B, L, 4H]
        carry = forget_gate * keep if ctx.has_keep else forget_gate
        weight_t = weight_hh.transpose(1, 2)
        grad_gates = [None] * grad_outputs.shape[2]
        dh, dc = grad_hidden, grad_cell
        for t in reversed(range(grad_outputs.shape[2])):
            dh = dh + grad_outputs[:, :, t]
            dc = torch.addcmul(dc, dh, output_term[:, :, t])
            grad_gates[t] = torch.cat([dc, dc, dc, dh], -1) * factors[:, :, t]
            dh = torch.bmm(grad_gates[t], weight_t)
            if ctx.has_keep:
                dh = dh * keep[:, :, t]
            dc = dc * carry[:, :, t]
        grad_input_gates = torch.stack(grad_gates, 2)  # [M, B, L, 4H]
        grad_weight = torch.bmm(hiddens.flatten(1, 2).transpose(1, 2), grad_input_gates.flatten(1, 2))
        return grad_input_gates, grad_weight, dh, dc, None


class MemoryActorCritic(nn.Module):
    """PPO's network with memory: separate actor and critic towers (encoder -> MLP torso ->
    a memory core -> a linear head), as sb3-contrib's RecurrentPPO with a critic LSTM: the
    value loss, whose scale follows the returns, never reshapes the policy's memory. A
    Gaussian head gets a state-independent log-std appended.

    The two towers' cores run as one core of 2K members (the actor's K, then the critic's
    K), so each step is one batched step for both; every state entry a core carries has the
    towers on axis 2: [K, N, 2, ...] (index 0 the actor's, 1 the critic's). Subclasses build
    the core (`RecurrentActorCritic`: an LSTM; `attention.AttentionActorCritic`: a gated
    transformer) and run it in `core`.
    """

    carried: ClassVar[tuple[str, ...]] = ()
    """State entries the learner reads at a sequence's first step only: the core's state,
    which it then carries through the sequence itself."""

    def __init__(self, generators: Sequence[torch.Generator], spec: NetworkSpec, inputs: MemoryInputs):
        super().__init__()
        self.inputs = inputs
        self.actor_encoder = Encoder(generators, spec.layout, spec.cnn)
        self.actor_torso = mlp(
            generators, self.actor_encoder.out_dim, spec.hidden_sizes, None, spec.activation
        )
        self.critic_encoder = Encoder(generators, spec.layout, spec.cnn)
        self.critic_torso = mlp(
            generators, self.critic_encoder.out_dim, spec.hidden_sizes, None, spec.activation
        )
        width = spec.hidden_sizes[-1] if spec.hidden_sizes else self.actor_encoder.out_dim
        self.core_in_features = width + inputs.prev_action_dim + int(inputs.prev_reward)
        """Width of what the core reads each step: the torso's features and the extra inputs."""

    def build_heads(
        self,
        generators: Sequence[torch.Generator],
        core_out_features: int,
        param_dim: int,
        continuous: bool,
        log_std_init: float,
    ) -> None:
        """The linear policy and value heads on the core's outputs (after the core, so the
        weights draw from each seed's generator in the order the LSTM network always did)."""
        self.actor = PerSeedLinear(generators, core_out_features, param_dim, 0.01)
        self.critic = PerSeedLinear(generators, core_out_features, 1, 1.0)
        self.continuous = continuous
        if continuous:
            self.log_std = nn.Parameter(torch.full((len(generators), 1, param_dim), log_std_init))

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Each state entry's shape per env (after [K, N]): the core's, then the extra inputs."""
        shapes = self.core_state_shapes()
        if self.inputs.prev_action_dim:
            shapes["prev_action"] = (self.inputs.prev_action_dim,)
        if self.inputs.prev_reward:
            shapes["prev_reward"] = ()
        return shapes

    def core_state_shapes(self) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def core(
        self, x: torch.Tensor, memory: TensorState, starts: torch.Tensor | None
    ) -> tuple[torch.Tensor, TensorState]:
        """The core over L steps of B sequences for 2K members: inputs `x` [2K, B, L, F], the
        core's state at step 0 from `memory` (entries [K, B, ...]), `starts` [K, B, L] ->
        outputs [2K, B, L, H] and the core's state after the last step ([K, B, ...])."""
        raise NotImplementedError

    def unroll(
        self, obs: TensorObs, memory: TensorState, starts: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, TensorState]:
        """L steps of B sequences per seed: `obs` [K, B, L, ...]; `memory`: the `carried`
        entries at the sequences' first step [K, B, >=1, ...], "prev_action" and
        "prev_reward" at every step [K, B, L, ...]; `starts` [K, B, L] true where an episode
        starts (the core forgets everything before that step; None: no episode starts
        inside the sequences).

        Returns the policy params [K, B, L, P], the values [K, B, L] and the core's state
        after the last step ([K, B, ...] each).
        """
        batch, length = next(iter(obs.values())).shape[1:3]
        flat = {key: value.flatten(1, 2) for key, value in obs.items()}  # [K, B*L, ...]
        torsos = [
            self.actor_torso(self.actor_encoder(flat)),
            self.critic_torso(self.critic_encoder(flat)),
        ]
        extra = []
        if self.inputs.prev_action_dim:
            extra.append(memory["prev_action"])
        if self.inputs.prev_reward:
            extra.append(memory["prev_reward"][..., None])
        # [2K, B, L, F]: the actor's K members, then the critic's.
        x = torch.cat([torch.cat([t.unflatten(1, (batch, length)), *extra], -1) for t in torsos])
        outputs, state = self.core(x, {key: memory[key][:, :, 0] for key in self.carried}, starts)
        actor_out, critic_out = outputs.unflatten(0, (2, -1))  # [K, B, L, H] each
        params = self.actor(actor_out)
        if self.continuous:
            params = torch.cat([params, self.log_std.unsqueeze(1).expand_as(params)], -1)
        return params, self.critic(critic_out).squeeze(-1), state

    def step(self, obs: TensorObs, memory: TensorState) -> tuple[torch.Tensor, torch.Tensor, TensorState]:
        """One step for N envs per seed (entries [K, N, ...], resets already applied):
        params [K, N, P], values [K, N] and the core's next state."""
        one_step = {key: value.unsqueeze(2) for key, value in obs.items()}
        memory_steps = {key: value.unsqueeze(2) for key, value in memory.items()}
        params, values, state = self.unroll(one_step, memory_steps, None)
        return params.squeeze(2), values.squeeze(2), state


def members(state: torch.Tensor) -> torch.Tensor:
    """A state entry of both towers as the 2K members': [K, B, 2, ...] -> [2K, B, ...]."""
    return state.movedim(2, 0).flatten(0, 1)


def towers(state: torch.Tensor) -> torch.Tensor:
    """The inverse of `members`: [2K, B, ...] -> [K, B, 2, ...]."""
    return state.unflatten(0, (2, -1)).movedim(0, 2)


class RecurrentActorCritic(MemoryActorCritic):
    """`MemoryActorCritic` with an LSTM core; its state "hidden" and "cell" [K, N, 2, H]."""

    carried = ("hidden", "cell")

    def __init__(
        self,
        generators: Sequence[torch.Generator],
        spec: NetworkSpec,
        lstm: LSTMSpec,
        param_dim: int,
        continuous: bool,
        log_std_init: float = 0.0,
    ):
        super().__init__(generators, spec, lstm)
        self.spec = lstm
        self.actor_lstm = PerSeedLSTM(generators, self.core_in_features, lstm.cell_size)
        self.critic_lstm = PerSeedLSTM(generators, self.core_in_features, lstm.cell_size)
        self.build_heads(generators, lstm.cell_size, param_dim, continuous, log_std_init)

    def core_state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"hidden": (2, self.spec.cell_size), "cell": (2, self.spec.cell_size)}

    def core(
        self, x: torch.Tensor, memory: TensorState, starts: torch.Tensor | None
    ) -> tuple[torch.Tensor, TensorState]:
        actor_in, critic_in = x.unflatten(0, (2, -1))
        input_gates = torch.cat(
            [self.actor_lstm.input_gates(actor_in), self.critic_lstm.input_gates(critic_in)]
        )
        weight_hh = torch.cat([self.actor_lstm.weight_hh, self.critic_lstm.weight_hh])
        keep = None
        if starts is not None:
            keep = (~starts).unsqueeze(-1).to(input_gates.dtype)
            keep = torch.cat([keep, keep])  # [2K, B, L, 1]
        outputs, hidden, cell = lstm_recurrence(
            input_gates, weight_hh, members(memory["hidden"]), members(memory["cell"]), keep
        )
        return outputs, {"hidden": towers(hidden), "cell": towers(cell)}
