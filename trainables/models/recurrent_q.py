"""Recurrent DQN's network (R2D2, Kapturowski et al. 2019): encoder -> MLP torso -> an LSTM ->
a linear head of action values, for K seeds.

Its state per env is "hidden" and "cell" [K, N, H] (and "prev_action" / "prev_reward" when
the config feeds them), zero at an episode's start, carried by the samplers exactly as PPO's
(`recurrent.py`); the learner replays stored sequences from the state their first step saw.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rlsweep.trainables.models.encoders import Encoder, TensorObs
from rlsweep.trainables.models.layers import PerSeedLinear, mlp
from rlsweep.trainables.models.networks import NetworkSpec
from rlsweep.trainables.models.recurrent import LSTMSpec, PerSeedLSTM, TensorState


class RecurrentQNetwork(nn.Module):
    """Q(h_t, ·) for Discrete actions, where h_t is the LSTM's summary of the episode so far."""

    carried = ("hidden", "cell")
    """State entries the learner reads at a sequence's first step only."""

    def __init__(
        self, generators: Sequence[torch.Generator], spec: NetworkSpec, lstm: LSTMSpec, num_actions: int
    ):
        super().__init__()
        self.spec = lstm
        self.encoder = Encoder(generators, spec.layout, spec.cnn)
        self.torso = mlp(generators, self.encoder.out_dim, spec.hidden_sizes, None, spec.activation)
        width = spec.hidden_sizes[-1] if spec.hidden_sizes else self.encoder.out_dim
        in_features = width + lstm.prev_action_dim + int(lstm.prev_reward)
        self.lstm = PerSeedLSTM(generators, in_features, lstm.cell_size)
        self.head = PerSeedLinear(generators, lstm.cell_size, num_actions, 1.0)

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Each state entry's shape per env (after [K, N])."""
        shapes = {"hidden": (self.spec.cell_size,), "cell": (self.spec.cell_size,)}
        if self.spec.prev_action_dim:
            shapes["prev_action"] = (self.spec.prev_action_dim,)
        if self.spec.prev_reward:
            shapes["prev_reward"] = ()
        return shapes

    def unroll(
        self, obs: TensorObs, memory: TensorState, starts: torch.Tensor | None
    ) -> tuple[torch.Tensor, TensorState]:
        """L steps of B sequences per seed: `obs` [K, B, L, ...]; `memory`: "hidden" and
        "cell" at the first step [K, B, H], "prev_action" / "prev_reward" at every step
        [K, B, L, ...]; `starts` [K, B, L] true where an episode starts (the LSTM's state
        is zeroed before that step; None: no episode starts inside the sequences).

        Returns Q-values [K, B, L, num_actions] and the LSTM state after the last step."""
        batch, length = next(iter(obs.values())).shape[1:3]
        flat = {key: value.flatten(1, 2) for key, value in obs.items()}  # [K, B*L, ...]
        parts = [self.torso(self.encoder(flat)).unflatten(1, (batch, length))]
        if self.spec.prev_action_dim:
            parts.append(memory["prev_action"])
        if self.spec.prev_reward:
            parts.append(memory["prev_reward"][..., None])
        keep = None if starts is None else (~starts).unsqueeze(-1).to(parts[0].dtype)
        outputs, hidden, cell = self.lstm(torch.cat(parts, -1), memory["hidden"], memory["cell"], keep)
        return self.head(outputs), {"hidden": hidden, "cell": cell}

    def step(self, obs: TensorObs, memory: TensorState) -> tuple[torch.Tensor, TensorState]:
        """One step for N envs per seed (entries [K, N, ...], resets already applied):
        Q-values [K, N, A] and the LSTM's next state."""
        one_step = {key: value.unsqueeze(2) for key, value in obs.items()}
        inputs = {
            key: value.unsqueeze(2) if key not in self.carried else value for key, value in memory.items()
        }
        q, state = self.unroll(one_step, inputs, None)
        return q.squeeze(2), state
