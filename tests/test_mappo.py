"""MAPPO (`central_value`): the critic sees the global state (the env's state(), else all
agents' observations concatenated in agent order); the actor sees only its own observation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from multi_agent_envs import SpreadEnv, TurnTakingEnv

from rlsweep.trainables.config import ConfigError, build_config
from rlsweep.trainables.envs.multi_agent import check_multi_agent_env, global_state, state_provider
from rlsweep.trainables.models.central_value import STATE_KEY, CentralValuePolicy
from rlsweep.trainables.multi_agent_ppo import MultiAgentPPO, MultiAgentPPOConfig, build_policies
from rlsweep.trainables.sampling.multi_agent_worker import MultiAgentWorker

SMALL = {"rollout_length": 8, "minibatch_size": 16, "num_envs_per_worker": 2, "evaluation_interval": 0}


def make_worker(config: dict, num_envs: int = 2) -> MultiAgentWorker:
    cfg = build_config(MultiAgentPPOConfig, config)
    spaces = check_multi_agent_env(cfg.env_source, cfg.env_config)
    return MultiAgentWorker(
        cfg.env_source, cfg.env_config, num_envs, [0], lambda: build_policies(cfg, spaces, "cpu")
    )


def weights_of(worker: MultiAgentWorker) -> dict:
    return {"policies": {pid: p.get_weights() for pid, p in worker.policies.items()}, "league": None}


def first_layer_inputs(network: torch.nn.Module) -> dict[str, list[tuple[int, ...]]]:
    """The input shapes the actor's and the critic's first layers receive."""
    seen: dict[str, list[tuple[int, ...]]] = {"actor": [], "critic": []}
    for name in seen:
        getattr(network, name)[0].register_forward_hook(
            lambda module, args, output, name=name: seen[name].append(tuple(args[0].shape))
        )
    return seen


def test_mappo_critic_gets_all_agents_observations_in_agent_order_and_the_actor_only_its_own():
    worker = make_worker({"env": SpreadEnv, "policy_mapping_fn": "shared", "central_value": True})
    policy = worker.policies["shared"]
    assert isinstance(policy, CentralValuePolicy)
    seen = first_layer_inputs(policy.network)
    rollout = worker.sample(weights_of(worker), 4).rollouts["shared"]
    assert set(seen["actor"]) == {(1, 8, 2)}  # 2 envs x 4 agents, each its own 2 values
    assert set(seen["critic"]) == {(1, 8, 8)}  # ... each the 4 agents' 8 values
    state, own = rollout.obs[STATE_KEY], rollout.obs["vector"]  # [T+1, 1, N, ...]; column = env x agent
    valid = np.concatenate([rollout.valid, np.ones_like(rollout.valid[:1])])
    agents = [agent for (_, agent, _) in worker.streams]  # the rollout's columns, in order
    for column, agent in enumerate(agents):
        k = int(agent.removeprefix("agent_"))
        rows = valid[:, 0, column]
        np.testing.assert_allclose(state[rows, 0, column, 2 * k : 2 * k + 2], own[rows, 0, column])


def test_mappo_on_simple_spread_feeds_the_critic_the_envs_state():
    worker = make_worker({"env": "mpe2:simple_spread_v3", "central_value": True}, num_envs=1)
    policy = next(iter(worker.policies.values()))
    seen = first_layer_inputs(policy.network)
    rollout = next(iter(worker.sample(weights_of(worker), 3).rollouts.values()))
    assert set(seen["actor"]) == {(1, 3, 18)} and set(seen["critic"]) == {(1, 3, 54)}
    assert rollout.obs[STATE_KEY].shape[-1] == 54
    provider = state_provider(worker.envs[0])
    np.testing.assert_allclose(worker.states[0], provider.state())


def test_mappo_learns_through_ppos_loss_and_updates_its_central_critic():
    algo = MultiAgentPPO(config={"env": SpreadEnv, "central_value": True, **SMALL})
    critic = algo.policies["shared"].network.critic[0].weight.detach().clone()
    result = algo.train()
    assert np.isfinite(result["policies/shared/value_loss"])
    assert not torch.equal(critic, algo.policies["shared"].network.critic[0].weight)
    algo.stop()


def test_concatenated_state_refuses_a_step_that_did_not_observe_every_agent():
    spaces = check_multi_agent_env(build_config(MultiAgentPPOConfig, {"env": SpreadEnv}).env_source)
    env = SpreadEnv()
    obs, _ = env.reset()
    with pytest.raises(RuntimeError, match=r"did not observe agents \['agent_3'\]"):
        global_state(env, {a: o for a, o in obs.items() if a != "agent_3"}, spaces)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"env": TurnTakingEnv, "central_value": True, "policy_mapping_fn": "shared"},
            "'central_value' needs a global state: multi-agent env .* has no state\\(\\) and observes only",
        ),
        (
            {"env": "pettingzoo.classic:tictactoe_v3", "central_value": True, "self_play": {}},
            "'central_value' .* not with self_play",
        ),
    ],
)
def test_central_value_without_a_global_state_fails_in_one_line(config, message):
    with pytest.raises(ConfigError, match=message) as error:
        MultiAgentPPO.check_multi_agent(build_config(MultiAgentPPOConfig, config))
    assert "\n" not in str(error.value)
