"""Multi-agent experience: env forms adapted at one seam, agents mapped to policies, one
forward pass per policy, masks honoured, per-policy learners, leagues, and one Tune run."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from multi_agent_envs import AgentlessParallelEnv, SpreadEnv, TurnTakingEnv

from rlsweep.trainables.config import ConfigError, build_config
from rlsweep.trainables.envs.multi_agent import (
    ALL,
    check_multi_agent_env,
    make_multi_agent_env,
    resolve_multi_agent_env,
)
from rlsweep.trainables.league import LeagueState, SelfPlayConfig
from rlsweep.trainables.multi_agent_ppo import (
    MultiAgentPPO,
    MultiAgentPPOConfig,
    build_policies,
    unflatten_policy_keys,
)
from rlsweep.trainables.sampling.multi_agent_worker import MultiAgentWorker

TICTACTOE = "pettingzoo.classic:tictactoe_v3"
SPREAD = "mpe2:simple_spread_v3"


def make_worker(config: dict, num_envs: int = 2) -> tuple[MultiAgentWorker, MultiAgentPPOConfig]:
    cfg = build_config(MultiAgentPPOConfig, config)
    spaces = check_multi_agent_env(cfg.env_source, cfg.env_config)
    worker = MultiAgentWorker(
        cfg.env_source, cfg.env_config, num_envs, [0], lambda: build_policies(cfg, spaces, "cpu")
    )
    return worker, cfg


def weights_of(worker: MultiAgentWorker) -> dict:
    return {"policies": {pid: p.get_weights() for pid, p in worker.policies.items()}, "league": None}


def test_rllib_style_env_with_turns_and_agents_joining_and_leaving_gives_each_agent_a_row_per_turn():
    worker, _ = make_worker({"env": TurnTakingEnv, "policy_mapping_fn": "per_agent"}, num_envs=1)
    rollout = worker.sample(weights_of(worker), 40)
    env = worker.envs[0].env
    pending = {agent: int(s.pending is not None) for (_, agent, _), s in worker.streams.items()}
    for agent in ("a", "b", "c"):
        valid_rows = int(rollout.rollouts[agent].valid.sum())
        assert valid_rows == env.turns[agent] - pending[agent], agent


def test_rewards_paid_after_an_agents_action_until_its_next_turn_all_reach_its_row():
    worker, _ = make_worker({"env": TurnTakingEnv, "policy_mapping_fn": "per_agent"}, num_envs=1)
    rollout = worker.sample(weights_of(worker), 40)  # 5 whole episodes of 8 steps
    env = worker.envs[0].env
    for agent in ("a", "b", "c"):
        assert rollout.rollouts[agent].rewards.sum() == pytest.approx(env.paid[agent]), agent


def test_masked_actions_are_never_taken():
    worker, _ = make_worker({"env": TurnTakingEnv, "policy_mapping_fn": "shared"}, num_envs=4)
    worker.sample(weights_of(worker), 200)  # the env raises on a masked action
    assert sum(worker.envs[0].env.turns.values()) == 200


def test_aec_env_asks_only_the_agent_whose_turn_it_is():
    env = make_multi_agent_env(resolve_multi_agent_env(TICTACTOE))
    obs, _ = env.reset(seed=0)
    assert list(obs) == ["player_1"]
    obs, *_ = env.step({"player_1": 4})
    assert list(obs) == ["player_2"] and obs["player_2"]["action_mask"][4] == 0


def test_aec_game_end_returns_both_players_final_observations_and_rewards():
    env = make_multi_agent_env(resolve_multi_agent_env(TICTACTOE))
    env.reset(seed=0)
    for move in (0, 3, 1, 4):  # player_1 takes 0 and 1, player_2 3 and 4
        env.step({env.env.agent_selection: move})
    obs, rewards, terminateds, _, _ = env.step({"player_1": 2})  # completes the top row
    assert set(obs) == {"player_1", "player_2"} and terminateds[ALL]
    assert rewards == {"player_1": 1.0, "player_2": -1.0}


def test_parallel_env_ends_with_all_once_no_agent_is_left():
    env = make_multi_agent_env(resolve_multi_agent_env(SPREAD), {"max_cycles": 3})
    obs, _ = env.reset(seed=0)
    ends = []
    for _ in range(3):
        obs, _, _, truncateds, _ = env.step(dict.fromkeys(obs, 0))
        ends.append(truncateds[ALL])
    assert ends == [False, False, True]


def test_agents_of_one_policy_share_one_forward_pass_per_step():
    worker, _ = make_worker({"env": SpreadEnv, "policy_mapping_fn": "shared"}, num_envs=3)
    policy = worker.policies["shared"]
    batches = []
    explore = policy.explore
    policy.explore = lambda obs, *args: batches.append(obs["vector"].shape) or explore(obs, *args)
    worker.sample(weights_of(worker), 4)
    assert batches == [(1, 12, 2)] * 4  # 3 envs x 4 agents in each step's one pass


def test_per_policy_overrides_reach_their_own_optimizer_and_network():
    algo = MultiAgentPPO(
        config={
            "env": SpreadEnv,
            "policies": {
                "agent_0": {"lr": 1e-3, "hidden_sizes": [16]},
                "agent_1": {},
                "agent_2": {},
                "agent_3": {},
            },
            "policies.agent_1.lr": 5e-4,
            "policy_mapping_fn": "per_agent",
            "rollout_length": 8,
            "minibatch_size": 8,
            "num_envs_per_worker": 1,
            "evaluation_interval": 0,
        }
    )
    algo.train()
    lrs = {pid: learner.optimizer.param_groups[0]["lr"] for pid, learner in algo.learners.items()}
    assert lrs == {"agent_0": 1e-3, "agent_1": 5e-4, "agent_2": 3e-4, "agent_3": 3e-4}
    first_layers = {
        pid: next(p for p in policy.network.parameters() if p.ndim >= 2).shape
        for pid, policy in algo.policies.items()
    }
    assert 16 in first_layers["agent_0"] and 16 not in first_layers["agent_1"]
    algo.stop()


def test_search_space_keys_of_one_policy_nest_under_policies():
    config = unflatten_policy_keys({"lr": 1e-3, "policies": ["a", "b"], "policies.b.ent_coef": 0.01})
    assert config == {"lr": 1e-3, "policies": {"a": {}, "b": {"ent_coef": 0.01}}}


def test_default_mapping_is_shared_for_equal_spaces_and_per_agent_otherwise():
    equal, _ = make_worker({"env": SpreadEnv})
    differing, _ = make_worker({"env": SpreadEnv, "env_config": {"odd_one_out": True}})
    assert list(equal.policies) == ["shared"]
    assert list(differing.policies) == ["agent_0", "agent_1", "agent_2", "agent_3"]


def test_league_snapshot_is_a_frozen_copy_of_the_learner():
    algo = MultiAgentPPO(
        config={
            "env": TICTACTOE,
            "rollout_length": 16,
            "minibatch_size": 32,
            "num_envs_per_worker": 4,
            "evaluation_interval": 0,
            "self_play": {"snapshot_interval": 1},
        }
    )
    algo.train()
    (name,) = algo.league.snapshots
    frozen = {k: v.copy() for k, v in algo.league.snapshots[name]["network"].items()}
    algo.train()
    algo.train()
    assert all(np.array_equal(frozen[k], v) for k, v in algo.league.snapshots[name]["network"].items())
    live = algo.policies["shared"].get_weights()["network"]
    assert not all(np.array_equal(frozen[k], live[k]) for k in frozen)
    algo.stop()


def test_prioritized_league_draws_most_the_snapshot_that_beats_the_learner():
    league = LeagueState(SelfPlayConfig(opponent_sampling="prioritized", fixed_opponent_fraction=0), "main")
    weak, strong = league.add_snapshot({}), league.add_snapshot({})
    league.outcomes = {weak: [1] * 10, strong: [-1] * 10}
    chances = league.probabilities()
    assert chances[strong] > 10 * chances[weak]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {
                "env": SpreadEnv,
                "policies": ["p"],
                "policy_mapping_fn": "multi_agent_envs:map_to_missing_policy",
            },
            "mapped agent 'agent_0' to unknown policy 'nobody'",
        ),
        (
            {"env": SpreadEnv, "env_config": {"odd_one_out": True}, "policy_mapping_fn": "shared"},
            "share policy 'shared' but their observation or action spaces differ",
        ),
        ({"env": AgentlessParallelEnv}, "has no 'possible_agents'"),
        ({"env": "CartPole-v1"}, "single-agent gymnasium id"),
    ],
)
def test_bad_multi_agent_input_fails_in_one_line_naming_the_problem(config, message):
    with pytest.raises(ConfigError, match=message) as error:
        MultiAgentPPO.check_multi_agent(build_config(MultiAgentPPOConfig, config))
    assert "\n" not in str(error.value)


@pytest.mark.ray
def test_tune_runs_a_multi_agent_sweep_reporting_each_policy(ray_session, tmp_path):
    from ray import tune

    analysis = tune.run(
        MultiAgentPPO,
        config={
            "env": "rlsweep.trainables.envs.multi_agent_cartpole:MultiAgentCartPole",
            "env_config": {"num_agents": 2},
            "policy_mapping_fn": "per_agent",
            "policies": ["agent_0", "agent_1"],
            "policies.agent_0.lr": tune.grid_search([1e-3, 3e-4]),
            "num_workers": 0,
            "num_envs_per_worker": 2,
            "rollout_length": 32,
            "minibatch_size": 32,
            "evaluation_interval": 1,
            "evaluation_num_episodes": 2,
        },
        stop={"training_iteration": 1},
        storage_path=str(tmp_path),
        verbose=0,
    )
    results = [trial.last_result for trial in analysis.trials]
    assert sorted(r["policies/agent_0/lr"] for r in results) == [3e-4, 1e-3]
    for result in results:
        assert result["policies/agent_1/lr"] == 3e-4
        assert {"agents/agent_0/episode_return_mean", "policies/agent_1/episode_return_mean"} <= set(result)
        assert result["episode_return_mean"] == pytest.approx(
            result["agents/agent_0/episode_return_mean"] + result["agents/agent_1/episode_return_mean"]
        )


def test_check_names_every_agent_its_spaces_and_its_policy_without_ray(capsys):
    import ray

    from rlsweep.cli import main

    ray_was_running = ray.is_initialized()  # the session's Ray, when the Tune test ran first
    assert main(["check", "tictactoe_selfplay"]) == 0
    out = capsys.readouterr().out
    assert "Agents:       2, policy mapping shared" in out
    assert "player_2 -> shared: observations Dict('action_mask': Box(0, 1, (9,), int8)" in out
    assert ray.is_initialized() == ray_was_running


def test_a_checkpoint_restores_every_policy_and_the_league(tmp_path):
    config = {
        "env": TICTACTOE,
        "rollout_length": 16,
        "minibatch_size": 32,
        "num_envs_per_worker": 2,
        "evaluation_interval": 0,
        "self_play": {"snapshot_interval": 1},
    }
    algo = MultiAgentPPO(config=config)
    algo.train()
    algo.save_checkpoint(str(tmp_path))
    restored = MultiAgentPPO(config=config)
    restored.load_checkpoint(str(tmp_path))
    saved, loaded = algo.policies["shared"].get_weights(), restored.policies["shared"].get_weights()
    assert all(np.array_equal(saved["network"][k], loaded["network"][k]) for k in saved["network"])
    assert list(restored.league.snapshots) == ["snapshot_1"]
    policy = MultiAgentPPO.load_policy(tmp_path)
    obs = {"observation": np.zeros((3, 3, 2), np.int8), "action_mask": np.eye(9, dtype=np.int8)[4]}
    assert policy.compute_single_action(obs) == 4  # the only legal move
    algo.stop()
    restored.stop()


def test_elo_rises_when_the_learner_beats_a_snapshot_rated_as_itself():
    from rlsweep.trainables.sampling.multi_agent_worker import EpisodeRecord

    league = LeagueState(SelfPlayConfig(), "main")
    snapshot = league.add_snapshot({})
    win = EpisodeRecord({"p1": 1.0, "p2": -1.0}, {}, 5, opponent=snapshot, learner_agent="p1")
    league.record([win])
    assert league.ratings["main"] == pytest.approx(1008.0)  # K (1 - 1/2) above 1000
    assert league.ratings[snapshot] == pytest.approx(992.0)


def test_a_snapshot_joins_early_once_the_learner_beats_the_league_often_enough():
    league = LeagueState(SelfPlayConfig(snapshot_interval=100, snapshot_win_rate=0.9), "main")
    first = league.add_snapshot({})
    league.outcomes = {first: deque([1] * 10)}
    assert not league.wants_snapshot(1)  # too few games to judge
    league.outcomes = {first: deque([1] * 17 + [-1] * 3)}
    assert not league.wants_snapshot(2)  # 85% < 90%
    league.outcomes = {first: deque([1] * 18 + [0] * 2)}
    assert league.wants_snapshot(3)


def test_a_registered_env_name_builds_the_multi_agent_env():
    from ray.tune.registry import register_env

    register_env("test_turns", lambda config: TurnTakingEnv(config))
    spaces = check_multi_agent_env(resolve_multi_agent_env("test_turns"))
    assert spaces.agents == ["a", "b", "c"]


def test_a_held_out_test_on_several_seeds_is_refused_before_the_search_starts(capsys):
    from rlsweep.cli import main

    assert main(["check", "tictactoe_selfplay", "--set", "test.seeds=3", "--set", "test.top=1"]) == 2
    err = capsys.readouterr().err
    assert "experiment key 'test.seeds' is 3, but the held-out test cannot train them" in err
