"""Multi-agent PPO: independent learners (one policy per agent or group of agents) and
parameter sharing (agents of one policy train one network), with optional league self-play.

The math is PPO's own, per policy: each trained policy has a `PolicyLearner` whose update
is `PPO.learn` (GAE batch, clipped surrogate, value loss, entropy bonus, Adam) bound to
that policy's config (with its `policies.<id>` overrides), network and optimizer. What is
new is where experience comes from: `MultiAgentWorker` turns the env's agents into one
single-agent `Rollout` per policy (see its module docstring).

Results: the team return (sum over agents per episode) is `episode_return_mean`, so it is
the default sweep metric; each policy's and agent's under `policies/<id>/...` and
`agents/<id>/...`; under self-play the league's win/draw/loss rates (`league/...`) and, at
evaluation, the greedy learner's against each fixed opponent as first and second player
(`evaluation/vs_<opponent>/...`).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlsweep.trainables.algorithm import Algorithm
from rlsweep.trainables.checkpoint import read_checkpoint, write_checkpoint
from rlsweep.trainables.config import ConfigError, build_config
from rlsweep.trainables.envs.check import EnvReport
from rlsweep.trainables.envs.multi_agent import AgentSpaces, check_multi_agent_env
from rlsweep.trainables.league import SELF, LeagueState, SelfPlayConfig, outcome_rates
from rlsweep.trainables.learning.device import learner_device
from rlsweep.trainables.learning.optim import adam
from rlsweep.trainables.models.central_value import CentralValuePolicy
from rlsweep.trainables.models.policies import ActorCriticPolicy
from rlsweep.trainables.policy_mapping import PolicyMapping
from rlsweep.trainables.ppo import PPO, PPOConfig
from rlsweep.trainables.sampling.multi_agent_worker import EpisodeRecord, MultiAgentRollout, MultiAgentWorker
from rlsweep.trainables.sampling.rollout import Rollout
from rlsweep.trainables.sampling.worker_group import WorkerGroup
from rlsweep.trainables.seeds import generators, seed_values
from rlsweep.trainables.training_episodes import EPISODE_WINDOW

POLICY_SEED_OFFSET = 1_000
"""Between the seeds of consecutive policies, so independent policies start from different weights."""


@dataclass
class MultiAgentPPOConfig(PPOConfig):
    """PPO's hyperparameters (the defaults of every policy), plus who acts for which agent."""

    policies: dict[str, Any] | list[str] | None = None
    """Policy ids, or id -> that policy's overrides of the keys above (lr, ent_coef,
    hidden_sizes, ...); none: one shared policy if all agents have the same spaces, else one each."""
    policy_mapping_fn: Any = None
    """(agent_id, episode) -> policy id: a function, "module:function", "shared" or "per_agent"."""
    policies_to_train: list[str] | None = None
    """The policies the learner updates (default: all); the others only act."""
    self_play: SelfPlayConfig | None = None
    """League self-play for two-player games (see `rlsweep.trainables.league`)."""
    central_value: bool = False
    """MAPPO: every policy's value function sees the global state (the env's `state()`, else
    all agents' observations concatenated in a fixed agent order) instead of the agent's own
    observation; the actors stay decentralized (MAPPO's `use_centralized_V`)."""

    def validate(self) -> None:
        super().validate()
        if self.num_seeds != 1:
            raise ConfigError(
                "config key 'num_seeds' must be 1 for MultiAgentPPO (batched seeds are single-agent)"
            )
        if self.use_lstm:
            raise ConfigError(
                "config key 'use_lstm' is not supported by MultiAgentPPO yet; set use_lstm: false"
            )
        if self.central_value and self.self_play is not None:
            raise ConfigError(
                "config key 'central_value' (a critic on the global state) is for cooperative envs, "
                "not with self_play: league opponents would see the learner's critic input"
            )
        if self.central_value and self.use_attention:
            raise ConfigError("config key 'central_value' does not support use_attention yet")

    @staticmethod
    def nest_keys(values: dict[str, Any]) -> dict[str, Any]:
        """Search spaces reach per-policy keys as "policies.<id>.<key>" (see `unflatten_policy_keys`)."""
        return unflatten_policy_keys(values)

    def policy_config(self, overrides: dict[str, Any]) -> PPOConfig:
        """The PPO config of one policy: these keys, with its overrides."""
        base = {f.name: getattr(self, f.name) for f in dataclasses.fields(PPOConfig)}
        base["env"] = self.env_source.creator  # resolved once; a policy checks only its own keys
        try:
            return build_config(PPOConfig, {**base, **overrides})
        except ConfigError as error:
            raise ConfigError(f"policies: {error}") from None


def unflatten_policy_keys(config: dict[str, Any]) -> dict[str, Any]:
    """Search spaces reach per-policy keys as "policies.<id>.<key>": nest them under `policies`."""
    flat = {key: value for key, value in config.items() if key.startswith("policies.")}
    if not flat:
        return config
    nested = {key: value for key, value in config.items() if key not in flat}
    policies = nested.get("policies") or {}
    policies = {str(p): {} for p in policies} if isinstance(policies, list) else dict(policies)
    for key, value in flat.items():
        _, policy_id, name = key.split(".", 2)
        policies[policy_id] = {**(policies.get(policy_id) or {}), name: value}
    nested["policies"] = policies
    return nested


class PolicyLearner:
    """One policy's PPO learner. Its update is PPO's own methods, unchanged, bound to this
    policy's config, network and optimizer instead of the single-agent trainable's."""

    learn = PPO.learn
    minibatch_loss = PPO.minibatch_loss
    annealed = PPO.annealed
    _batch = PPO._batch
    _update_normalizer = PPO._update_normalizer

    def __init__(self, config: PPOConfig, policy: ActorCriticPolicy, device: torch.device):
        self.algo_config = config
        self.policy = policy
        self.device = device
        self.learner_generators = generators(policy.seeds, device)
        self.optimizer = adam(policy.network.parameters(), config.lr, eps=1e-5)
        self.timesteps_total = 0
        """Env steps of the trial so far: what lr and clip-range annealing count."""


def build_policies(
    config: MultiAgentPPOConfig, spaces: AgentSpaces, device: torch.device | str
) -> tuple[PolicyMapping, dict[str, ActorCriticPolicy]]:
    """The mapping and every policy (its own config and seed), as learner and workers build them."""
    mapping = build_mapping(config, spaces)
    policies = {}
    for index, (policy_id, spec) in enumerate(mapping.policies.items()):
        policy_config = config.policy_config(spec.overrides)
        seeds = [config.seed + index * POLICY_SEED_OFFSET]
        if config.central_value:
            policies[policy_id] = CentralValuePolicy(
                policy_config, spec.observation_space, spec.action_space, device, seeds, spaces
            )
        else:
            policies[policy_id] = ActorCriticPolicy(
                policy_config, spec.observation_space, spec.action_space, device, seeds
            )
    return mapping, policies


def build_mapping(config: MultiAgentPPOConfig, spaces: AgentSpaces) -> PolicyMapping:
    return PolicyMapping.build(
        config.policies,
        config.policy_mapping_fn,
        config.policies_to_train,
        spaces.agents,
        spaces.observation_spaces,
        spaces.action_spaces,
    )


@dataclass
class MultiAgentEnvReport(EnvReport):
    """What checking a multi-agent env found: spaces as Dicts keyed by agent id, and lines
    for `rlsweep check` naming every agent's spaces and policy."""

    agent_lines: list[str] = dataclasses.field(default_factory=list)


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


class MultiAgentPPO(Algorithm):
    """Multi-agent PPO as a Tune Trainable: `tune.run(MultiAgentPPO, config={"env": ENV})`.

    ENV is a multi-agent env in any form `envs/multi_agent.py` adapts (`mpe2:simple_spread_v3`).
    """

    policy_class = ActorCriticPolicy
    config_class = MultiAgentPPOConfig
    action_spaces = PPO.action_spaces

    @classmethod
    def action_space_problem(cls, action_space: gym.spaces.Space) -> str | None:
        """None of a single env's action spaces: a single-agent env is never this algorithm's
        (so errors suggesting algorithms for one do not name it); policies check their own."""
        return "MultiAgentPPO trains multi-agent envs"

    @classmethod
    def check_multi_agent(cls, config: MultiAgentPPOConfig) -> tuple[AgentSpaces, PolicyMapping]:
        """Build one env, read its agents and spaces, map them to policies and check that
        every policy can learn in its spaces with its config: what `setup` and `rlsweep
        check` run before anything samples. Every problem is a one-line ConfigError."""
        spaces = check_multi_agent_env(config.env_source, config.env_config)
        cls.check_spaces(
            config, gym.spaces.Dict(spaces.observation_spaces), gym.spaces.Dict(spaces.action_spaces)
        )
        mapping = build_mapping(config, spaces)
        if config.central_value and (problem := spaces.central_value_problem()):
            raise ConfigError(problem)
        if config.self_play is not None:
            if len(spaces.agents) != 2:
                raise ConfigError(
                    f"config key 'self_play' needs a two-player env; {spaces.label!r} has "
                    f"agents {spaces.agents}"
                )
            if len(mapping.policies) != 1:
                raise ConfigError(
                    "config key 'self_play' needs one learning policy that both sides share "
                    f"(policy_mapping_fn: shared), got policies {sorted(mapping.policies)}"
                )
        return spaces, mapping

    @classmethod
    def check_environment(cls, config: MultiAgentPPOConfig, *, run_env_checker: bool = False) -> EnvReport:
        """`check_multi_agent` as the CLI's checks read it: the agents' spaces as Dict spaces
        keyed by agent id, and lines naming each agent's spaces and policy."""
        spaces, mapping = cls.check_multi_agent(config)
        lines = [f"Agents:       {len(spaces.agents)}, policy mapping {mapping.description}"]
        for agent in spaces.agents:
            observations = _one_line(spaces.observation_spaces[agent])
            actions = _one_line(spaces.action_spaces[agent])
            lines.append(
                f"  {agent} -> {mapping.agent_policies[agent]}: "
                f"observations {observations}, actions {actions}"
            )
        trained = ", ".join(mapping.trained) or "none"
        lines.append(f"  policies: {', '.join(mapping.policies)} (trained: {trained})")
        if config.central_value:
            lines.append(
                f"  central value (MAPPO): critics see {spaces.global_state_source} "
                f"({spaces.global_state_dim} values)"
            )
        return MultiAgentEnvReport(
            config.env_source,
            gym.spaces.Dict(spaces.observation_spaces),
            gym.spaces.Dict(spaces.action_spaces),
            agent_lines=lines,
        )

    @classmethod
    def check_spaces(
        cls, config: MultiAgentPPOConfig, observation_space: gym.spaces.Dict, action_space: gym.spaces.Dict
    ) -> None:
        """Map the agents of `check_environment`'s Dict spaces to `config`'s policies and check each."""
        agents = list(observation_space.spaces)
        spaces = AgentSpaces(config.env_source.label, agents, dict(observation_space), dict(action_space))
        mapping = build_mapping(config, spaces)
        for policy_id, spec in mapping.policies.items():
            try:
                PPO.check_spaces(
                    config.policy_config(spec.overrides), spec.observation_space, spec.action_space
                )
            except ConfigError as error:
                raise ConfigError(f"policy {policy_id!r}: {error}") from None

    def setup(self, config: dict[str, Any]) -> None:
        torch.set_num_threads(1)
        self.algo_config = cfg = build_config(MultiAgentPPOConfig, config)
        self.device = learner_device(cfg.num_gpus)
        self.spaces, self.mapping = self.check_multi_agent(cfg)
        _, self.policies = build_policies(cfg, self.spaces, self.device)
        self.learners = {
            pid: PolicyLearner(policy.config, policy, self.device)
            for pid, policy in self.policies.items()
            if self.mapping.policies[pid].trained
        }
        self.league = LeagueState(cfg.self_play, next(iter(self.policies))) if cfg.self_play else None
        self.timesteps_total = 0
        self.episodes: deque[EpisodeRecord] = deque(maxlen=EPISODE_WINDOW)
        self.episodes_total = 0
        self.last_evaluation: dict[str, float] = {}
        make_policies = functools.partial(build_policies, cfg, self.spaces, "cpu")
        self.workers = WorkerGroup(
            cfg.num_workers,
            cfg.env_source,
            cfg.env_config,
            cfg.num_envs_per_worker,
            seed_values(cfg.seed, 1),
            make_policies,
            cfg.max_worker_restarts,
            cfg.async_sampling,
            worker_class=MultiAgentWorker,
        )
        self.evaluation_worker: MultiAgentWorker | None = None
        if cfg.restore_from is not None:
            self.load_checkpoint(cfg.restore_from)

    def sampling_weights(self) -> dict[str, Any]:
        return {
            "policies": {pid: policy.get_weights() for pid, policy in self.policies.items()},
            "league": self.league.for_workers() if self.league else None,
        }

    def step(self) -> dict[str, Any]:
        cfg = self.algo_config
        start = time.perf_counter()
        rounds: list[MultiAgentRollout] = self.workers.sample(
            self.sampling_weights(), cfg.rollout_length, self.iteration
        )
        sample_time = time.perf_counter() - start
        env_steps = sum(r.env_steps for r in rounds)
        self.timesteps_total += env_steps
        finished = [episode for r in rounds for episode in r.episodes]
        self.episodes.extend(finished)
        self.episodes_total += len(finished)
        if self.league is not None:
            self.league.record(finished)

        start = time.perf_counter()
        result: dict[str, Any] = {}
        for pid, learner in self.learners.items():
            rollouts: list[Rollout] = [r.rollouts[pid] for r in rounds if pid in r.rollouts]
            if not rollouts:
                continue
            learner.timesteps_total = self.timesteps_total
            metrics = learner.learn(rollouts)
            result.update(
                {f"policies/{pid}/{key}": float(np.nanmean(value)) for key, value in metrics.items()}
            )
            result[f"policies/{pid}/agent_steps"] = float(sum(r.agent_steps.get(pid, 0) for r in rounds))
        learn_time = time.perf_counter() - start
        self._check_weights_finite()

        result.update(episode_metrics(list(self.episodes)))
        if self.league is not None:
            result.update(self.league.metrics())
            if self.league.wants_snapshot(self.iteration + 1):
                self.league.add_snapshot(self.policies[self.league.learner].get_weights())
        result.update(
            timesteps_total=self.timesteps_total,
            num_episodes=float(len(finished)),
            episodes_total=float(self.episodes_total),
            env_steps_per_s=env_steps / (sample_time + learn_time),
            sample_time_s=sample_time,
            learn_time_s=learn_time,
            num_worker_restarts=self.workers.restarts,
        )
        if cfg.evaluation_interval and self.iteration % cfg.evaluation_interval == 0:
            self.last_evaluation = self.evaluate()
        result.update(self.last_evaluation)
        return result

    def _check_weights_finite(self) -> None:
        for pid, policy in self.policies.items():
            if not all(bool(p.isfinite().all()) for p in policy.network.parameters()):
                raise FloatingPointError(
                    f"training diverged at iteration {self.iteration + 1}: policy {pid!r}'s weights are NaN "
                    "or infinite; try a lower lr or max_grad_norm"
                )

    def evaluate(self) -> dict[str, float]:
        """Greedy episodes: the team's returns; under self-play, the learner's win/draw/loss
        rates against each fixed opponent as first and as second player."""
        cfg = self.algo_config
        start = time.perf_counter()
        if self.evaluation_worker is None:
            make_policies = functools.partial(build_policies, cfg, self.spaces, "cpu")
            seed = cfg.seed + 1_000_000
            self.evaluation_worker = MultiAgentWorker(
                cfg.env_source, cfg.env_config, min(cfg.evaluation_num_episodes, 16), [seed], make_policies
            )
        weights = self.sampling_weights()
        if self.league is None:
            played = self.evaluation_worker.play(weights, cfg.evaluation_num_episodes)
            results = {f"evaluation/{k}": v for k, v in episode_metrics(played).items()}
        else:
            results = {}
            games = cfg.self_play.evaluation_games // 2
            for name in self.league.fixed:
                first = self.evaluation_worker.play(weights, games, opponent=name, learner_first=True)
                second = self.evaluation_worker.play(weights, games, opponent=name, learner_first=False)
                for part, played in (("as_first/", first), ("as_second/", second), ("", first + second)):
                    results.update(outcome_rates([e.outcome for e in played], f"evaluation/vs_{name}/{part}"))
        results["evaluation/time_s"] = time.perf_counter() - start
        return results

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        state = {
            "policies": {pid: policy.get_weights() for pid, policy in self.policies.items()},
            "optimizers": {pid: learner.optimizer.state_dict() for pid, learner in self.learners.items()},
            "iteration": self.iteration,
            "timesteps_total": self.timesteps_total,
            "episodes_total": self.episodes_total,
            "last_evaluation": self.last_evaluation,
            "league": self.league.state_dict() if self.league else None,
        }
        write_checkpoint(checkpoint_dir, type(self).__name__, dataclasses.asdict(self.algo_config), state)

    def load_checkpoint(self, checkpoint: str | dict[str, Any]) -> None:
        state = read_checkpoint(checkpoint, type(self).__name__)["state"]
        for pid, weights in state["policies"].items():
            self.policies[pid].set_weights(weights)
        for pid, optimizer_state in state["optimizers"].items():
            self.learners[pid].optimizer.load_state_dict(optimizer_state)
        self._iteration = state["iteration"]
        self.timesteps_total = state["timesteps_total"]
        self.episodes_total = state["episodes_total"]
        self.last_evaluation = state["last_evaluation"]
        if self.league is not None and state["league"] is not None:
            self.league.load_state_dict(state["league"])

    @classmethod
    def load_policy(
        cls,
        checkpoint: str | Path,
        device: str = "cpu",
        seed_index: int | None = None,
        policy_id: str | None = None,
    ) -> ActorCriticPolicy:
        """One policy of a checkpoint (`policy_id`, else the first), ready to act without Ray or Tune."""
        payload = read_checkpoint(checkpoint, cls.__name__)
        config = build_config(MultiAgentPPOConfig, payload["config"])
        spaces = check_multi_agent_env(config.env_source, config.env_config)
        _, policies = build_policies(config, spaces, device)
        policy_id = policy_id or next(iter(policies))
        if policy_id not in policies:
            raise ConfigError(f"checkpoint has policies {sorted(policies)}, not {policy_id!r}")
        policies[policy_id].set_weights(payload["state"]["policies"][policy_id])
        return policies[policy_id]

    def cleanup(self) -> None:
        self.workers.stop()
        if self.evaluation_worker is not None:
            self.evaluation_worker.close()


def episode_metrics(episodes: list[EpisodeRecord]) -> dict[str, float]:
    """The team return (sum over agents) as `episode_return_mean`, each agent's and each
    policy's mean return (a policy's: over the agent-episodes it acted in)."""
    if not episodes:
        return {}
    team = [e.team_return for e in episodes]
    results = {
        "episode_return_mean": float(np.mean(team)),
        "episode_return_min": float(np.min(team)),
        "episode_return_max": float(np.max(team)),
        "episode_len_mean": float(np.mean([e.length for e in episodes])),
    }
    per_agent: dict[Any, list[float]] = {}
    per_policy: dict[str, list[float]] = {}
    for episode in episodes:
        for agent, value in episode.agent_returns.items():
            per_agent.setdefault(agent, []).append(value)
            policy = episode.agent_policies.get(agent)
            if policy is not None and (episode.opponent in (None, SELF) or agent == episode.learner_agent):
                per_policy.setdefault(policy, []).append(value)
    results.update({f"agents/{a}/episode_return_mean": float(np.mean(v)) for a, v in per_agent.items()})
    results.update({f"policies/{p}/episode_return_mean": float(np.mean(v)) for p, v in per_policy.items()})
    return results
