"""Sampling a multi-agent env: a worker steps its env copies, asks each policy for the
actions of all the agents mapped to it in one forward pass per step, and returns, per
trained policy, a `Rollout` in the single-agent format, so PPO learns from it unchanged.

Each column of a policy's rollout is one agent's stream in one env copy: the agent's own
turns, one row per action it took, in order. A row is complete when the agent is next
observed (its reward is everything paid to it in between, its flags those of that
observation); an agent's last row of an episode is followed by an invalid row holding its
final observation, as a single-agent rollout's autoreset step is. Streams of different
lengths are left-padded with invalid rows, so every stream ends at the rollout's last row
and `obs[T]` is the observation its next row starts from: the bootstrap PPO computes.
Rows an agent started but that are not complete yet wait for the next rollout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlsweep.trainables.envs.multi_agent import ALL, AgentSpaces, global_state, make_multi_agent_env
from rlsweep.trainables.envs.names import EnvSource
from rlsweep.trainables.models.central_value import STATE_KEY, CentralValuePolicy
from rlsweep.trainables.models.observations import MASK_KEY, Observations
from rlsweep.trainables.models.policy import Policy
from rlsweep.trainables.policy_mapping import PolicyMapping
from rlsweep.trainables.sampling.rollout import Rollout
from rlsweep.trainables.sampling.rollout_worker import EnvError
from rlsweep.trainables.seeds import generators

Opponent = Callable[[Any, np.ndarray | None, np.random.Generator], Any]
"""A fixed opponent: (observation, action mask or None, rng) -> action."""


@dataclass
class Episode:
    """What a policy mapping function receives as `episode`: which episode of which env copy,
    and under self-play the learner's agent and its opponent in it."""

    episode_id: int
    env_index: int
    learner_agent: Any = None
    opponent: str | None = None
    """The league member the learner plays in this episode ("self", a snapshot, a fixed
    opponent), or None outside self-play."""


@dataclass
class EpisodeRecord:
    """One finished episode: every agent's return, and under self-play the opponent."""

    agent_returns: dict[Any, float]
    agent_policies: dict[Any, str]
    length: int
    opponent: str | None = None
    learner_agent: Any = None
    learner_first: bool = False
    """Whether the learner's agent acted first (the first player of a board game)."""

    @property
    def team_return(self) -> float:
        return float(sum(self.agent_returns.values()))

    @property
    def outcome(self) -> int:
        """Under self-play: 1 the learner won, 0 a draw, -1 it lost (by the sign of its return)."""
        return int(np.sign(self.agent_returns.get(self.learner_agent, 0.0)))


@dataclass
class MultiAgentRollout:
    """What a worker returns per round: a Rollout per trained policy, and the episodes that
    finished in it."""

    rollouts: dict[str, Rollout]
    episodes: list[EpisodeRecord]
    env_steps: int
    agent_steps: dict[str, int]
    sample_time_s: float
    worker: int = 0
    policy_version: int = 0


@dataclass
class League:
    """The opponents a self-play learner meets, as sent to workers with the weights."""

    learner: str
    """The learning policy's id."""
    probabilities: dict[str, float]
    """Opponent name -> the chance an episode draws it; "self" is the learner itself."""
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Frozen snapshot name -> its weights."""
    fixed: dict[str, str] = field(default_factory=dict)
    """Fixed opponent name -> "random" or a "module:function"."""


@dataclass
class _Row:
    obs: Any
    mask: np.ndarray | None
    action: Any
    logprob: float = 0.0
    value: float = 0.0
    reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    valid: bool = True
    needs_value: bool = False
    """An invalid final row after a truncation: PPO bootstraps from its value."""
    state: np.ndarray | None = None
    """The env's global state when the row's observation was made (central_value only)."""


@dataclass
class _Stream:
    """One agent's rows in one env copy for one policy."""

    rows: list[_Row] = field(default_factory=list)
    pending: _Row | None = None
    next_obs: tuple[Any, np.ndarray | None] | None = None
    next_state: np.ndarray | None = None


def random_opponent(
    obs: Any, mask: np.ndarray | None, rng: np.random.Generator, space: gym.spaces.Space
) -> Any:
    """A uniformly random legal action."""
    if mask is not None:
        return int(rng.choice(np.flatnonzero(mask)))
    return space.sample()


class MultiAgentWorker:
    """Owns `num_envs` copies of a multi-agent env and CPU copies of the policies; runs in a
    Ray actor or in-process (the constructor matches `RolloutWorker`'s, so `WorkerGroup`
    creates, feeds and replaces it the same way)."""

    def __init__(
        self,
        env: EnvSource,
        env_config: dict[str, Any],
        num_envs: int,
        seeds: Sequence[int],
        make_policies: Callable[[], tuple[PolicyMapping, dict[str, Policy]]],
        index: int = 0,
        *,
        num_workers: int = 0,
    ):
        torch.set_num_threads(1)
        self.env_id = env.label
        self.index = index
        worker_index = index + 1 if num_workers else 0
        self.envs = [
            make_multi_agent_env(env, env_config, worker_index=worker_index, vector_index=i)
            for i in range(num_envs)
        ]
        self.mapping, self.policies = make_policies()
        central = [p for p in self.policies.values() if isinstance(p, CentralValuePolicy)]
        self.state_spaces: AgentSpaces | None = central[0].spaces if central else None
        """Set when critics see the global state (MAPPO): where it comes from."""
        self.states: list[np.ndarray | None] = [None] * num_envs
        self.generators = generators([seeds[0]])
        self.rng = np.random.default_rng(seeds[0])
        self.league: League | None = None
        self.opponents: dict[str, Policy | Opponent] = {}
        self.episode_count = 0
        self.episodes: list[Episode] = []
        self.ready: list[dict[Any, tuple[Any, np.ndarray | None]]] = []
        self.agent_policies: list[dict[Any, str]] = []
        self.returns: list[dict[Any, float]] = []
        self.lengths: list[int] = []
        self.first_agent: list[Any] = []
        self.streams: dict[tuple[int, Any, str], _Stream] = {}
        for i in range(num_envs):
            self.episodes.append(Episode(0, i))
            self.ready.append({})
            self.agent_policies.append({})
            self.returns.append({})
            self.lengths.append(0)
            self.first_agent.append(None)
            self._reset(i, seed=seeds[0] + i)

    # -- episodes -------------------------------------------------------------------------

    def _reset(self, i: int, seed: int | None = None) -> None:
        self.episode_count += 1
        episode = Episode(self.episode_count, i)
        if self.league is not None:
            names = list(self.league.probabilities)
            chances = np.array([self.league.probabilities[n] for n in names])
            episode.opponent = names[self.rng.choice(len(names), p=chances / chances.sum())]
            episode.learner_agent = self.mapping_agents[self.rng.integers(len(self.mapping_agents))]
        self.episodes[i] = episode
        try:
            obs, infos = self.envs[i].reset(seed=seed)
        except Exception as error:
            raise EnvError(f"env {self.env_id!r} raised {type(error).__name__} on reset: {error}") from error
        self.ready[i] = {agent: (o, _mask(infos, agent)) for agent, o in obs.items()}
        self._observe_state(i, obs)
        self.agent_policies[i], self.returns[i], self.lengths[i] = {}, {}, 0
        self.first_agent[i] = next(iter(obs), None)

    def _observe_state(self, i: int, obs: dict[Any, Any]) -> None:
        """Keep env copy i's global state after a reset or step, for centralized critics."""
        if self.state_spaces is None:
            return
        try:
            self.states[i] = global_state(self.envs[i], obs, self.state_spaces)
        except RuntimeError as error:
            raise EnvError(str(error)) from None

    @property
    def mapping_agents(self) -> list[Any]:
        return list(self.mapping.agent_policies)

    def actor_of(self, i: int, agent: Any) -> str:
        """Who acts for `agent` in env copy i this episode: a policy id, a snapshot's or a
        fixed opponent's name."""
        known = self.agent_policies[i].get(agent)
        if known is not None:
            return known
        episode = self.episodes[i]
        if self.league is not None and episode.opponent is not None:
            learner = self.league.learner
            actor = (
                learner if agent == episode.learner_agent or episode.opponent == "self" else episode.opponent
            )
        else:
            actor = self.mapping.policy_of(agent, episode)
        self.agent_policies[i][agent] = actor
        return actor

    # -- weights and opponents ------------------------------------------------------------

    def set_weights(self, weights: dict[str, Any]) -> None:
        for policy_id, policy_weights in weights["policies"].items():
            self.policies[policy_id].set_weights(policy_weights)
        league: League | None = weights.get("league")
        self.league = league
        if league is None:
            return
        learner = self.policies[league.learner]
        for name, snapshot in league.snapshots.items():
            if name not in self.opponents:
                policy = type(learner)(
                    learner.config, learner.observation_space, learner.action_space, "cpu", learner.seeds
                )
                policy.set_weights(snapshot)
                self.opponents[name] = policy
        for name, function in league.fixed.items():
            if name not in self.opponents:
                self.opponents[name] = fixed_opponent(function, learner.action_space)

    # -- sampling -------------------------------------------------------------------------

    def sample(self, weights: dict[str, Any], num_steps: int, policy_version: int = 0) -> MultiAgentRollout:
        """Load `weights`, then step every env copy `num_steps` times."""
        start = time.perf_counter()
        self.set_weights(weights)
        finished: list[EpisodeRecord] = []
        agent_steps: dict[str, int] = {}
        for _ in range(num_steps):
            actions = self._act(record=True, deterministic=False, agent_steps=agent_steps)
            for i, env_actions in enumerate(actions):
                record = self._step(i, env_actions, record=True)
                if record is not None:
                    finished.append(record)
        rollouts = {pid: self._pack(pid) for pid in self.policies if self._trained(pid)}
        return MultiAgentRollout(
            rollouts={pid: rollout for pid, rollout in rollouts.items() if rollout is not None},
            episodes=finished,
            env_steps=num_steps * len(self.envs),
            agent_steps=agent_steps,
            sample_time_s=time.perf_counter() - start,
            worker=self.index,
            policy_version=policy_version,
        )

    def play(
        self,
        weights: dict[str, Any],
        num_episodes: int,
        opponent: str | None = None,
        learner_first: bool | None = None,
    ) -> list[EpisodeRecord]:
        """`num_episodes` whole episodes with deterministic policies, nothing recorded for
        learning: the evaluation. Under self-play, against `opponent`, the learner acting
        first, second or either (`learner_first`)."""
        self.set_weights(weights)
        if opponent is not None and self.league is not None:
            self.league = League(
                self.league.learner, {opponent: 1.0}, self.league.snapshots, self.league.fixed
            )
        played: list[EpisodeRecord] = []
        for i in range(len(self.envs)):
            self._reset(i)
            self._place_learner(i, learner_first)
        while len(played) < num_episodes:
            actions = self._act(record=False, deterministic=True, agent_steps={})
            for i, env_actions in enumerate(actions):
                record = self._step(i, env_actions, record=False)
                if record is not None:
                    played.append(record)
                    self._place_learner(i, learner_first)
        return played[:num_episodes]

    def _place_learner(self, i: int, learner_first: bool | None) -> None:
        episode = self.episodes[i]
        if learner_first is not None and episode.learner_agent is not None:
            first = self.first_agent[i]
            others = [a for a in self.mapping_agents if a != first]
            episode.learner_agent = first if learner_first else others[0]

    def _trained(self, policy_id: str) -> bool:
        spec = self.mapping.policies.get(policy_id)
        return spec is not None and spec.trained

    def _act(self, record: bool, deterministic: bool, agent_steps: dict[str, int]) -> list[dict[Any, Any]]:
        """Every ready agent's action, one forward pass per policy over all agents mapped to it."""
        groups: dict[str, list[tuple[int, Any]]] = {}
        for i, ready in enumerate(self.ready):
            for agent in ready:
                groups.setdefault(self.actor_of(i, agent), []).append((i, agent))
        actions: list[dict[Any, Any]] = [{} for _ in self.envs]
        for actor, members in groups.items():
            observations = [self.ready[i][agent] for i, agent in members]
            if actor in self.policies:
                policy = self.policies[actor]
                states = [self.states[i] for i, _ in members] if self.state_spaces is not None else None
                obs = encode(policy, observations, states)
                if deterministic:
                    chosen, _ = policy.compute_actions(obs, {})
                    raw, extras = chosen, None
                else:
                    raw, extras, _ = policy.explore(obs, {}, self.generators)
                    chosen = policy.env_actions(raw)
                agent_steps[actor] = agent_steps.get(actor, 0) + len(members)
                recorded = record and self._trained(actor)
                for j, (i, agent) in enumerate(members):
                    actions[i][agent] = _env_action(chosen[0, j], policy.action_space)
                    if recorded:
                        stream = self.streams.setdefault((i, agent, actor), _Stream())
                        row_obs, row_mask = self.ready[i][agent]
                        stream.pending = _Row(
                            row_obs,
                            row_mask,
                            raw[0, j],
                            float(extras["logprob"][0, j]),
                            float(extras["value"][0, j]),
                            state=None if states is None else states[j],
                        )
            else:
                opponent = self.opponents[actor]
                if isinstance(opponent, Policy):
                    obs = encode(opponent, observations)
                    if deterministic:
                        chosen, _ = opponent.compute_actions(obs, {})
                    else:
                        chosen, _ = opponent.compute_actions(obs, {}, False, self.generators)
                    for j, (i, agent) in enumerate(members):
                        actions[i][agent] = _env_action(chosen[0, j], opponent.action_space)
                else:
                    for i, agent in members:
                        observation, mask = self.ready[i][agent]
                        actions[i][agent] = opponent(observation, _obs_mask(observation, mask), self.rng)
        return actions

    def _step(self, i: int, actions: dict[Any, Any], record: bool) -> EpisodeRecord | None:
        """Step env copy i; complete the rows of the agents it observed; returns the episode's
        record if it ended (and resets the env)."""
        try:
            obs, rewards, terminateds, truncateds, infos = self.envs[i].step(actions)
        except Exception as error:
            raise EnvError(f"env {self.env_id!r} raised {type(error).__name__}: {error}") from error
        self.lengths[i] += 1
        episode_over = bool(terminateds.get(ALL) or truncateds.get(ALL))
        self._observe_state(i, obs)
        for agent, reward in rewards.items():
            self.returns[i][agent] = self.returns[i].get(agent, 0.0) + float(reward)
            stream = self._stream(i, agent) if record else None
            if stream is not None and stream.pending is not None:
                stream.pending.reward += float(reward)
        self.ready[i] = {}
        for agent, observation in obs.items():
            terminated = bool(terminateds.get(agent) or terminateds.get(ALL))
            truncated = not terminated and bool(truncateds.get(agent) or truncateds.get(ALL))
            mask = _mask(infos, agent)
            if not (terminated or truncated):
                self.ready[i][agent] = (observation, mask)
            if record:
                self._complete(i, agent, observation, mask, terminated, truncated)
        unobserved_exits = any(
            agent not in obs and (terminateds.get(agent) or truncateds.get(agent))
            for agent in (*terminateds, *truncateds)
            if agent != ALL
        )
        if record and (episode_over or unobserved_exits):
            # Agents that left without a final observation, or whose episode was cut short.
            for (env_index, agent, _), stream in list(self.streams.items()):
                if env_index != i or stream.pending is None or agent in obs:
                    continue
                left = terminateds.get(agent) or truncateds.get(agent)
                if episode_over or left:
                    terminated = bool(terminateds.get(agent) or terminateds.get(ALL))
                    truncated = not terminated
                    self._complete(i, agent, stream.pending.obs, stream.pending.mask, terminated, truncated)
        if not episode_over:
            return None
        episode = self.episodes[i]
        policies = {agent: self.actor_of(i, agent) for agent in self.returns[i]}
        finished = EpisodeRecord(
            dict(self.returns[i]),
            policies,
            self.lengths[i],
            episode.opponent,
            episode.learner_agent,
            episode.learner_agent is not None and episode.learner_agent == self.first_agent[i],
        )
        self._reset(i)
        return finished

    def _stream(self, i: int, agent: Any) -> _Stream | None:
        actor = self.agent_policies[i].get(agent)
        return self.streams.get((i, agent, actor)) if actor is not None else None

    def _complete(
        self, i: int, agent: Any, observation: Any, mask: np.ndarray | None, terminated: bool, truncated: bool
    ) -> None:
        """The agent is observed again: its pending row is complete; if its episode ended,
        an invalid row with its final observation follows."""
        stream = self._stream(i, agent)
        if stream is None or stream.pending is None:
            return
        row = stream.pending
        row.terminated, row.truncated = terminated, truncated
        stream.rows.append(row)
        stream.pending = None
        stream.next_obs = (observation, mask)
        stream.next_state = self.states[i]
        if terminated or truncated:
            stream.rows.append(
                _Row(observation, mask, row.action, valid=False, needs_value=truncated, state=self.states[i])
            )

    def _pack(self, policy_id: str) -> Rollout | None:
        """The policy's completed rows as a Rollout [T, 1, N] (see the module docstring)."""
        streams = [stream for (_, _, pid), stream in self.streams.items() if pid == policy_id and stream.rows]
        if not streams:
            return None
        policy = self.policies[policy_id]
        length = max(len(stream.rows) for stream in streams)
        columns = []
        for stream in streams:
            first = stream.rows[0]
            padding = [_Row(first.obs, first.mask, first.action, valid=False, state=first.state)] * (
                length - len(stream.rows)
            )
            rows = padding + stream.rows
            if stream.pending is not None:
                following = (stream.pending.obs, stream.pending.mask, stream.pending.state)
            elif stream.next_obs is not None:
                following = (*stream.next_obs, stream.next_state)
            else:
                following = (first.obs, first.mask, first.state)
            columns.append((rows, following))
            stream.rows = []
        # Observations [T+1, N] in one batch: every row's, then each stream's next.
        flat = [(row.obs, row.mask, row.state) for rows, _ in columns for row in rows]
        flat += [f for _, f in columns]
        states = [state for _, _, state in flat] if self.state_spaces is not None else None
        encoded = encode(policy, [(o, m) for o, m, _ in flat], states)  # each [1, T*N + N, ...], stream-major
        num = len(columns)
        obs: Observations = {}
        for key, value in encoded.items():
            rows_part = value[0, : length * num].reshape(num, length, *value.shape[2:]).swapaxes(0, 1)
            last = value[0, length * num :][None]
            obs[key] = np.concatenate([rows_part, last])[:, None]  # [T+1, 1, N, ...]

        def column(attribute: str, dtype: Any) -> np.ndarray:
            table = np.array([[getattr(row, attribute) for row in rows] for rows, _ in columns], dtype=dtype)
            return table.T[:, None]  # [T, 1, N]

        values = column("value", np.float32)
        needs_value = column("needs_value", bool)
        if needs_value.any():  # bootstrap values of the final observations after truncations
            t_index, _, n_index = np.nonzero(needs_value)
            final = {key: value[t_index, 0, n_index][None] for key, value in obs.items()}
            with torch.no_grad():
                _, final_values, _ = policy.params_and_value(policy.obs_tensors(final), {})
            values[t_index, 0, n_index] = final_values.cpu().numpy()[0]
        actions = np.stack(
            [np.stack([np.asarray(row.action) for row in rows]) for rows, _ in columns], axis=1
        )
        return Rollout(
            obs=obs,
            actions=actions[:, None],
            rewards=column("reward", np.float32),
            terminated=column("terminated", bool),
            truncated=column("truncated", bool),
            valid=column("valid", bool),
            extras={"logprob": column("logprob", np.float32), "value": values},
            episode_returns=np.empty(0),
            episode_lengths=np.empty(0, dtype=np.int64),
            episode_seeds=np.empty(0, dtype=np.int64),
            sample_time_s=0.0,
            worker=self.index,
        )

    def close(self) -> None:
        for env in self.envs:
            env.close()


def encode(
    policy: Policy,
    observations: Sequence[tuple[Any, np.ndarray | None]],
    states: Sequence[np.ndarray | None] | None = None,
) -> Observations:
    """Agents' observations (each with the action mask its info gave, if any) as one batch
    [1, n, ...] for the policy's forward pass; with `states`, the global state of each
    agent's env under `STATE_KEY` (a centralized critic's input)."""
    space = policy.observation_space
    batch = gym.vector.utils.concatenate(
        space, [obs for obs, _ in observations], gym.vector.utils.create_empty_array(space, len(observations))
    )
    masks = [mask for _, mask in observations]
    infos = {MASK_KEY: masks} if all(mask is not None for mask in masks) and masks else None
    encoded = {key: value[None] for key, value in policy.layout.encode(batch, infos).items()}
    if states is not None:
        encoded[STATE_KEY] = np.stack(states).astype(np.float32)[None]
    return encoded


def fixed_opponent(function: str, action_space: gym.spaces.Space) -> Opponent:
    """A fixed opponent by name: "random", or a "module:function" taking (obs, mask, rng)."""
    if function == "random":
        return lambda obs, mask, rng: random_opponent(obs, mask, rng, action_space)
    from rlsweep.trainables.policy_mapping import load_function

    return load_function(function, "self_play.fixed_opponents")


def _mask(infos: dict[Any, Any], agent: Any) -> np.ndarray | None:
    info = infos.get(agent) or {}
    mask = info.get(MASK_KEY) if isinstance(info, dict) else None
    return None if mask is None else np.asarray(mask, dtype=bool)


def _obs_mask(observation: Any, mask: np.ndarray | None) -> np.ndarray | None:
    if mask is not None:
        return mask
    if isinstance(observation, dict) and MASK_KEY in observation:
        return np.asarray(observation[MASK_KEY], dtype=bool)
    return None


def _env_action(action: Any, space: gym.spaces.Space) -> Any:
    return int(action) if isinstance(space, gym.spaces.Discrete) else np.asarray(action)
