"""`ExternalVectorEnv`: a vector env whose N copies are slots that simulators' episodes
fill. The rollout worker steps it as it steps any vector env: `step(actions)` answers
every slot's waiting `get_action` with its action from one batched forward pass, then
waits until every slot sent its next observation (or ended its episode).

Next-step autoreset, as the worker expects: the step after an episode's end returns the
first observation of the slot's next episode (reward 0). A slot whose client goes silent
for `episode_timeout_s` ends its episode truncated at the last observation it sent, and
the slot goes to the next episode: a client killed mid-episode loses only that episode.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from rlsweep.trainables.config import ConfigError, build_config
from rlsweep.trainables.external.server import Event, PolicyServer
from rlsweep.trainables.external.simulators import SimulatorConfig, SimulatorFleet
from rlsweep.trainables.external.spaces import parse_space, spaces_from

logger = logging.getLogger(__name__)

EXTERNAL = "external"
"""The env name that makes a trial serve simulators instead of stepping envs."""


@dataclasses.dataclass
class ExternalConfig:
    """env_config of `env: external`."""

    observation_space: Any = None
    """A gymnasium space or a spec dict ({type: Box, low: -1, high: 1, shape: [4]})."""
    action_space: Any = None
    """A gymnasium space or a spec dict."""
    spaces_from: str | None = None
    """'module:Name' with observation_space and action_space attributes, instead of the two above."""
    host: str = "127.0.0.1"
    """Where the server binds; loopback unless simulators run on other machines."""
    port: int = 0
    """0: a free port the OS picks (parallel trials never collide); fixed ports suit one server only."""
    token: str | None = None
    """The secret every request must send; None: a fresh random one per server."""
    tls_cert: str | None = None
    """PEM certificate file: serve HTTPS (with tls_key)."""
    tls_key: str | None = None
    """PEM private key file of tls_cert."""
    max_request_bytes: int = 1 << 20
    """Requests with larger bodies are refused with 413."""
    episode_timeout_s: float = 30.0
    """A slot's episode whose client sends nothing for this long ends, truncated."""
    connect_timeout_s: float = 300.0
    """How long a slot may wait for an episode before sampling fails."""
    simulator: dict[str, Any] | None = None
    """How to launch simulators per worker: {command, per_worker, max_restarts, backoff_s}."""

    def validate(self) -> None:
        if self.spaces_from is None and (self.observation_space is None or self.action_space is None):
            raise ConfigError(
                "env 'external' needs its spaces: env_config 'observation_space' and 'action_space' "
                "(e.g. {type: Box, low: -1, high: 1, shape: [4]}), or 'spaces_from: module:Class'"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("env_config 'tls_cert' and 'tls_key' go together: give both or neither")
        if self.simulator is not None:
            if not isinstance(self.simulator, dict) or "command" not in self.simulator:
                raise ConfigError("env_config 'simulator' must be a mapping with a 'command'")
            build_config(SimulatorConfig, dict(self.simulator), prefix="simulator.")

    def spaces(self) -> tuple[gym.spaces.Space, gym.spaces.Space]:
        if self.spaces_from is not None:
            return spaces_from(self.spaces_from)
        return (
            parse_space(self.observation_space, "observation_space"),
            parse_space(self.action_space, "action_space"),
        )


def external_config(env_config: dict[str, Any] | None) -> ExternalConfig:
    return build_config(ExternalConfig, dict(env_config or {}), label="env_config")


class SimulatorsFailed(RuntimeError):
    """A launched simulator kept crashing, or no episode came to a slot in time."""


class ExternalVectorEnv(gym.vector.VectorEnv):
    metadata: ClassVar[dict[str, Any]] = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

    def __init__(self, env_config: dict[str, Any] | None, num_envs: int, *, worker_index: int = 0):
        self.config = external_config(env_config)
        self.num_envs = num_envs
        self.single_observation_space, self.single_action_space = self.config.spaces()
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self.server = PolicyServer(
            self.single_observation_space,
            self.single_action_space,
            num_envs,
            host=self.config.host,
            port=self.config.port,
            token=self.config.token,
            max_request_bytes=self.config.max_request_bytes,
            tls_cert=self.config.tls_cert,
            tls_key=self.config.tls_key,
        )
        self.address = self.server.start()
        self.token = self.server.token
        self.worker_index = worker_index
        self.fleet: SimulatorFleet | None = None
        """The launched simulators, started with the first reset (which gives their seed)."""
        if self.config.simulator is None:
            logger.warning(
                "serving %d simulator slots at %s with token %s", num_envs, self.address, self.token
            )
        self.waiting: list[Event | None] = [None] * num_envs
        """Per slot: the event the next action answers."""
        self.ended = np.zeros(num_envs, dtype=bool)
        """Slots whose last event ended an episode: the next step starts a new one."""
        self.last_obs: list[Any] = [None] * num_envs
        self.answered_at = np.zeros(num_envs)
        """When each slot's episode got its last action: silent since then."""
        self.free_generator: torch.Generator | None = None

    # -- the rollout worker's hooks --------------------------------------------------------

    def policy_updated(self, policy: Any, version: int) -> None:
        """The worker loaded new weights: keep a one-seed copy for local-inference clients
        and for episodes that do not train (called in the worker's thread)."""
        self.server.set_policy(policy, version)
        self.free_generator = torch.Generator().manual_seed(version)

        def act(obs: Any) -> Any:
            encoded = {key: value[None] for key, value in policy.layout.encode_one(obs).items()}
            with torch.no_grad():
                actions, _ = policy.compute_actions(
                    encoded, {}, deterministic=False, gens=[self.free_generator]
                )
            return actions[0, 0]

        self.server.act_freely = act

    def logged_actions(self, actions: np.ndarray, extras: dict[str, np.ndarray]) -> None:
        """Put the actions clients chose themselves (log_action, local inference) and their
        policy outputs in place of the policy's, in `actions` [N, ...] and `extras` [N]."""
        for index, event in enumerate(self.waiting):
            if event is None or event.action is None:
                continue
            actions[index] = policy_form(self.single_action_space, event.action)
            for key, value in event.extras.items():
                if key in extras:
                    extras[key][index] = value

    # -- the vector env API ----------------------------------------------------------------

    def reset(self, *, seed: Any = None, options: Any = None) -> tuple[Any, dict[str, Any]]:
        """Launch the simulators (simulator i gets seed `seed + i`), then wait for every
        slot's first observation."""
        if self.config.simulator is not None and self.fleet is None:
            simulator = build_config(SimulatorConfig, dict(self.config.simulator), prefix="simulator.")
            self.fleet = SimulatorFleet(
                simulator, self.address, self.token, int(seed or 0), self.worker_index
            )
        events = [self._next_event(index, self.num_envs) for index in range(self.num_envs)]
        return self._batch([event.obs for event in events]), {}

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        answers = [
            (event, _item(actions, index)) for index, event in enumerate(self.waiting) if event is not None
        ]
        self.server.answer(answers)
        self.answered_at[:] = time.monotonic()
        rewards = np.zeros(self.num_envs, dtype=np.float32)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        observations = []
        for index in range(self.num_envs):
            starts = self.ended[index]
            event = self._next_event(index, self.num_envs)
            if not starts:
                rewards[index] = event.reward
                terminated[index] = event.end == "terminated"
                truncated[index] = event.end == "truncated"
            observations.append(event.obs)
        return self._batch(observations), rewards, terminated, truncated, {}

    def _next_event(self, index: int, until: int) -> Event:
        """The slot's next event: of its running episode, or, after an end, the first of
        the next episode (ends of episodes that never acted are skipped). While it waits, it
        waits for slots index..until-1 at once (the ones this step reads next)."""
        starts = self.ended[index] or self.waiting[index] is None
        deadline = time.monotonic() + self.config.connect_timeout_s
        events = self.server.slots[index].events
        while True:
            if self.fleet is not None and self.fleet.failure is not None:
                raise SimulatorsFailed(self.fleet.failure)
            if events:
                event = events.popleft()
            else:
                self.server.wait_for_events(range(index, until), timeout=0.05)
                if events:
                    continue
                now = time.monotonic()
                if not starts and now - self.answered_at[index] > self.config.episode_timeout_s:
                    self.server.abandon(index, self.last_obs[index])
                    self.answered_at[index] = now
                if starts and now > deadline:
                    raise SimulatorsFailed(
                        f"no simulator episode came to slot {index} of {self.num_envs} at {self.address} "
                        f"within {self.config.connect_timeout_s:.0f} s (connect_timeout_s); start at least "
                        "num_envs_per_worker simulators per worker"
                    )
                continue
            if starts and event.end is not None:
                continue
            self.waiting[index] = None if event.end is not None else event
            self.ended[index] = event.end is not None
            self.last_obs[index] = event.obs
            return event

    def _batch(self, observations: list[Any]) -> Any:
        space = self.single_observation_space
        out = gym.vector.utils.create_empty_array(space, self.num_envs)
        return gym.vector.utils.concatenate(space, observations, out)

    def close_extras(self, **kwargs: Any) -> None:
        if self.fleet is not None:
            self.fleet.stop()
        self.server.answer([(event, None) for event in self.waiting if event is not None])
        self.server.stop()


def policy_form(space: gym.spaces.Space, action: Any) -> Any:
    """An env action as the policy emits it (Discrete indices from 0)."""
    if isinstance(space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete)):
        return np.asarray(action) - space.start
    return action


def _item(actions: Any, index: int) -> Any:
    if isinstance(actions, dict):
        return {key: _item(value, index) for key, value in actions.items()}
    if isinstance(actions, tuple):
        return tuple(_item(value, index) for value in actions)
    return actions[index]
