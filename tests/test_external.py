"""External simulators: the policy server's protocol, its vector env, the Python client in
both inference modes, a curl client, launched simulators, and one sweep through Tune."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import requests
import torch

from rlsweep.client import PolicyClient, PolicyServerError
from rlsweep.trainables.config import ConfigError, build_config
from rlsweep.trainables.external.simulators import SimulatorConfig, SimulatorFleet
from rlsweep.trainables.external.vector_env import ExternalVectorEnv, SimulatorsFailed, external_config
from rlsweep.trainables.models.policies import ActorCriticPolicy
from rlsweep.trainables.ppo import PPOConfig

ROOT = Path(__file__).resolve().parent.parent
SIMULATOR = ROOT / "examples" / "external_cartpole" / "cartpole_simulator.py"
SPACES = {
    "observation_space": {"type": "Box", "low": -5, "high": 5, "shape": [4]},
    "action_space": {"type": "Discrete", "n": 2},
}


@pytest.fixture
def served(request):
    """An ExternalVectorEnv with N slots (the test's parameter, else 1), closed afterwards."""
    envs = []

    def serve(num_envs: int = 1, **config):
        env = ExternalVectorEnv({**SPACES, "token": "secret", **config}, num_envs)
        envs.append(env)
        return env

    yield serve
    for env in envs:
        env.close()


def in_background(function, *args):
    """Run `function(*args)` in a thread; the returned getter joins it and gives its result."""
    result = {}

    def run():
        try:
            result["value"] = function(*args)
        except Exception as error:
            result["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def get():
        thread.join(timeout=30)
        if "error" in result:
            raise result["error"]
        return result["value"]

    return get


def ppo_policy(env):
    cfg = build_config(PPOConfig, {"env": "external", "env_config": SPACES})
    return ActorCriticPolicy(cfg, env.single_observation_space, env.single_action_space, "cpu", [0])


def test_remote_episode_round_trip_steps_the_vector_env(served):
    env = served()
    client = PolicyClient(env.address, token="secret")

    def play():
        episode = client.start_episode()
        first = client.get_action(episode, [1, 0, 0, 0])
        client.log_returns(episode, 1.0)
        client.log_returns(episode, 0.5)
        second = client.get_action(episode, [2, 0, 0, 0])
        client.log_returns(episode, 2.0)
        client.end_episode(episode, [3, 0, 0, 0])
        return first, second

    actions = in_background(play)
    obs, _ = env.reset()
    assert obs.tolist() == [[1, 0, 0, 0]]
    obs, reward, terminated, truncated, _ = env.step(np.array([1]))
    assert (obs.tolist(), reward.tolist(), terminated.tolist()) == ([[2, 0, 0, 0]], [1.5], [False])
    obs, reward, terminated, truncated, _ = env.step(np.array([0]))
    assert (obs.tolist(), reward.tolist(), terminated.tolist(), truncated.tolist()) == (
        [[3, 0, 0, 0]],
        [2.0],
        [True],
        [False],
    )
    assert actions() == (1, 0)


def test_next_episode_fills_the_slot_on_the_autoreset_step(served):
    env = served()
    client = PolicyClient(env.address, token="secret")

    def play_two():
        for start in (1, 5):
            episode = client.start_episode()
            client.get_action(episode, [start, 0, 0, 0])
            client.end_episode(episode, [start + 1, 0, 0, 0], truncated=True)

    done = in_background(play_two)
    env.reset()
    _, _, _, truncated, _ = env.step(np.array([0]))
    obs, reward, terminated, truncated_next, _ = env.step(np.array([0]))  # the autoreset step
    assert truncated.tolist() == [True]
    assert (obs.tolist(), reward.tolist(), terminated.tolist(), truncated_next.tolist()) == (
        [[5, 0, 0, 0]],
        [0.0],
        [False],
        [False],
    )
    env.step(np.array([0]))
    done()


def test_concurrent_get_actions_are_answered_by_one_step(served):
    env = served(num_envs=4)
    steps_per_client = 5

    def play(value):
        client = PolicyClient(env.address, token="secret")
        episode = client.start_episode()
        actions = [client.get_action(episode, [value, 0, 0, 0]) for _ in range(steps_per_client)]
        client.end_episode(episode, [value, 0, 0, 0])
        return actions

    clients = [in_background(play, value) for value in range(4)]
    obs, _ = env.reset()
    for _ in range(steps_per_client - 1):
        obs, *_ = env.step(obs[:, 0].astype(np.int64) % 2)  # each slot answered from one batch
    env.step(obs[:, 0].astype(np.int64) % 2)
    assert [results() for results in clients] == [[value % 2] * steps_per_client for value in range(4)]


def test_log_action_puts_the_clients_action_in_the_rollout(served):
    env = served()
    client = PolicyClient(env.address, token="secret")
    episode = client.start_episode()
    client.log_action(episode, [1, 0, 0, 0], 1)
    env.reset()
    actions, extras = np.array([0]), {"logprob": np.array([-0.7])}
    env.logged_actions(actions, extras)
    assert actions.tolist() == [1]


def test_episode_without_training_is_answered_without_a_slot(served):
    env = served()
    env.policy_updated(ppo_policy(env), version=0)
    client = PolicyClient(env.address, token="secret")
    episode = client.start_episode(training_enabled=False)
    assert client.get_action(episode, [0, 0, 0, 0]) in (0, 1)
    client.end_episode(episode, [0, 0, 0, 0])
    assert not env.server.slots[0].events


def test_local_inference_sends_the_episode_in_bulk_with_its_actions_and_logprobs(served):
    env = served()
    env.policy_updated(ppo_policy(env), version=3)
    client = PolicyClient(env.address, inference="local", token="secret")
    episode = client.start_episode()
    actions = []
    for step in range(3):
        actions.append(client.get_action(episode, [step, 0, 0, 0]))
        client.log_returns(episode, 1.0)
    assert not env.server.slots[0].events  # nothing was sent while the episode ran
    ended = in_background(client.end_episode, episode, [3, 0, 0, 0])  # returns once replayed
    obs, _ = env.reset()
    seen, logprobs = [], []
    for _ in range(3):
        step_actions, extras = np.array([0]), {"logprob": np.zeros(1)}
        env.logged_actions(step_actions, extras)
        seen.append(int(step_actions[0]))
        logprobs.append(float(extras["logprob"][0]))
        obs, reward, terminated, *_ = env.step(step_actions)
    ended()
    assert client.policy_version == 3
    assert seen == actions
    assert all(-1.0 < logprob < 0 for logprob in logprobs)  # two actions: log p near log 0.5
    assert (obs.tolist(), reward.tolist(), terminated.tolist()) == ([[3, 0, 0, 0]], [1.0], [True])


def test_two_servers_bind_distinct_free_ports_with_their_own_tokens(served):
    first, second = ExternalVectorEnv(SPACES, 1), ExternalVectorEnv(SPACES, 1)
    try:
        assert first.address != second.address and first.token != second.token
        refused = requests.get(f"{second.address}/health", headers={"Authorization": f"Bearer {first.token}"})
        assert refused.status_code == 401
    finally:
        first.close()
        second.close()


def test_wrong_token_is_refused_with_401(served):
    env = served()
    response = requests.post(f"{env.address}/episodes", json={}, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401 and "token" in response.json()["error"]


def test_request_over_the_size_limit_is_refused_and_the_server_keeps_serving(served):
    env = served(max_request_bytes=1000)
    headers = {"Authorization": "Bearer secret"}
    big = requests.post(f"{env.address}/episodes", json={"episode_id": "x" * 2000}, headers=headers)
    assert big.status_code == 413
    assert requests.get(f"{env.address}/health", headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "status", "reason"),
    [
        ("/episodes", b"{not json", 400, "malformed JSON"),
        ("/episodes/nope/action", b'{"observation": [0, 0, 0, 0]}', 404, "unknown episode"),
        ("/episodes/EP/action", b'{"observation": [0, 0, 0]}', 400, "shape [3], expected [4]"),
        ("/episodes/EP/returns", b'{"reward": "lots"}', 400, "finite number"),
        ("/episodes/EP/log_action", b'{"observation": [0, 0, 0, 0], "action": 7}', 400, "integer in"),
    ],
)
def test_malformed_request_gets_a_4xx_with_its_reason_and_the_episode_goes_on(
    served, path, body, status, reason
):
    env = served()
    client = PolicyClient(env.address, token="secret")
    episode = client.start_episode(episode_id="EP")
    response = requests.post(
        env.address + path,
        data=body,
        headers={"Authorization": "Bearer secret", "Content-Type": "application/json"},
    )
    assert (response.status_code, reason in response.json()["error"]) == (status, True)
    action = in_background(play_one_step, client, episode)
    env.reset()
    env.step(np.array([1]))
    assert action() == 1


def play_one_step(client, episode):
    action = client.get_action(episode, [0, 0, 0, 0])
    client.end_episode(episode, [0, 0, 0, 0])
    return action


def test_python_client_raises_the_servers_reason(served):
    env = served()
    with pytest.raises(PolicyServerError, match="unknown episode id 'missing'"):
        PolicyClient(env.address, token="secret").get_action("missing", [0, 0, 0, 0])


def test_curl_client_plays_a_whole_episode(served):
    env = served()
    script = subprocess.Popen(
        ["bash", str(ROOT / "tests" / "external_curl_episode.sh"), env.address, "secret"],
        stdout=subprocess.PIPE,
        text=True,
    )
    obs, _ = env.reset()
    rewards, ended = [], False
    for action in (1, 0, 1):
        obs, reward, terminated, *_ = env.step(np.array([action]))
        rewards.append(float(reward[0]))
        ended = bool(terminated[0])
    output, _ = script.communicate(timeout=30)
    assert script.returncode == 0
    assert output.splitlines()[:3] == ["action 1", "action 0", "action 1"]
    assert (rewards, ended, obs.tolist()) == ([1.0, 1.0, 1.0], True, [[4, 0, 0, 0]])


def test_silent_client_loses_only_its_episode(served):
    env = served(episode_timeout_s=0.3)
    client = PolicyClient(env.address, token="secret")
    silent = client.start_episode()
    in_background(client.get_action, silent, [1, 0, 0, 0])  # then nothing more: the client died
    env.reset()
    next_action = in_background(play_one_step, client, client.start_episode())
    _, _, _, truncated, _ = env.step(np.array([0]))
    obs, *_ = env.step(np.array([0]))
    env.step(np.array([1]))
    assert (truncated.tolist(), obs.tolist(), next_action()) == ([True], [[0, 0, 0, 0]], 1)


def test_spaces_from_spec_dict_and_from_a_class():
    from_dict = external_config(SPACES).spaces()
    from_class = external_config({"spaces_from": "tests.test_external:CartPoleSpaces"}).spaces()
    assert from_dict[0].shape == from_class[0].shape == (4,) and from_class[1].n == 2


class CartPoleSpaces:
    import gymnasium as _gym

    observation_space = _gym.spaces.Box(-5, 5, (4,))
    action_space = _gym.spaces.Discrete(2)


def test_missing_spaces_name_the_keys():
    with pytest.raises(ConfigError, match="'observation_space' and 'action_space'"):
        external_config({"simulator": {"command": "x"}})


# -- launched simulators --------------------------------------------------------------------


def fleet(command: str, per_worker: int = 2, **config):
    return SimulatorFleet(
        build_config(SimulatorConfig, {"command": command, "per_worker": per_worker, **config}),
        "http://127.0.0.1:1",
        "secret",
        seed=0,
        worker=0,
    )


def test_crashing_simulator_is_restarted_with_backoff_then_fails_showing_its_stderr():
    crash = f"{sys.executable} -c \"import sys; sys.stderr.write('bad seed {{seed}}\\n'); sys.exit(3)\""
    simulators = fleet(crash, per_worker=1, max_restarts=2, backoff_s=0.05)
    started = time.monotonic()
    while simulators.failure is None and time.monotonic() - started < 10:
        time.sleep(0.05)
    simulators.stop()
    assert simulators.simulators[0].restarts == 2
    assert "exited with code 3 after 2 restarts" in simulators.failure and "bad seed 0" in simulators.failure
    assert time.monotonic() - started >= 0.05 + 0.1  # the backoff doubled


def test_failed_simulators_fail_sampling_with_their_message(served):
    env = served(simulator={"command": f"{sys.executable} -c 'raise SystemExit(5)'", "max_restarts": 0})
    with pytest.raises(SimulatorsFailed, match="exited with code 5"):
        env.reset(seed=0)


def test_stopping_the_fleet_leaves_no_simulator_behind():
    simulators = fleet("sleep 60", per_worker=3)
    pids = simulators.pids()
    simulators.stop()
    assert not [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]


def test_simulators_die_with_a_killed_worker(tmp_path):
    script = (
        "from rlsweep.trainables.external.simulators import SimulatorConfig, SimulatorFleet\n"
        "import time\n"
        "f = SimulatorFleet(SimulatorConfig('sleep 60', per_worker=2), 'a', 't', 0, 0)\n"
        "print(*f.pids(), flush=True)\n"
        "time.sleep(60)\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    pids = [int(pid) for pid in worker.stdout.readline().split()]
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(psutil.pid_exists(pid) for pid in pids):
        time.sleep(0.05)
    assert len(pids) == 2 and not any(psutil.pid_exists(pid) for pid in pids)


def test_worker_trains_on_launched_simulators_in_both_inference_modes():
    """A rollout worker with launched CartPole simulators samples whole episodes."""
    from rlsweep.trainables.sampling.rollout_worker import RolloutWorker

    torch.set_num_threads(1)
    for inference in ("remote", "local"):
        command = f"{{python}} {SIMULATOR} --server {{address}} --token {{token}} --inference {inference}"
        env_config = {**SPACES, "simulator": {"command": command, "per_worker": 2}}
        cfg = build_config(PPOConfig, {"env": "external", "env_config": env_config})
        spaces = external_config(env_config).spaces()
        worker = RolloutWorker(
            "external", env_config, 2, [0], functools.partial(ActorCriticPolicy, cfg, *spaces, "cpu", [0])
        )
        try:
            rollout = worker.sample(worker.policy.get_weights(), 64)
        finally:
            pids = [pid for _, source in worker.external for pid in source.fleet.pids()]
            worker.close()
        assert len(rollout.episode_returns) > 0 and rollout.valid.mean() > 0.8, inference
        assert not any(psutil.pid_exists(pid) for pid in pids)


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_tune_trial_trains_on_its_launched_simulators_and_stops_them(tmp_path):
    from ray import tune

    from rlsweep.trainables import PPO

    simulator = tmp_path / "sim_for_this_test.py"  # a name no other process runs
    simulator.write_text(SIMULATOR.read_text())
    command = f"{{python}} {simulator} --server {{address}} --token {{token}} --seed {{seed}}"
    config = {
        "env": "external",
        "env_config": {**SPACES, "simulator": {"command": command, "per_worker": 2}},
        "num_workers": 1,
        "num_envs_per_worker": 2,
        "rollout_length": 32,
        "minibatch_size": 32,
    }
    analysis = tune.run(
        PPO, config=config, stop={"training_iteration": 2}, storage_path=str(tmp_path / "runs"), verbose=0
    )
    result = analysis.trials[0].last_result
    left = [
        p for p in psutil.process_iter(["cmdline"]) if str(simulator) in " ".join(p.info["cmdline"] or [])
    ]
    assert (result["timesteps_total"], result["num_episodes"] > 0, left) == (128, True, [])


@pytest.fixture
def certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


def test_tls_server_answers_clients_that_trust_its_certificate_only(served, certificate):
    cert, key = certificate
    env = served(tls_cert=cert, tls_key=key)
    assert env.address.startswith("https://")
    assert PolicyClient(env.address, token="secret", verify=cert).spaces()["action_space"]["n"] == 2
    with pytest.raises(requests.exceptions.SSLError):
        PolicyClient(env.address, token="secret").spaces()


def test_client_waits_for_a_server_that_is_not_up_yet():
    import socket

    with socket.socket() as probe:  # a port nobody serves yet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env_holder = []

    def start_later():
        time.sleep(0.5)
        env_holder.append(ExternalVectorEnv({**SPACES, "token": "secret", "port": port}, 1))

    starter = in_background(start_later)
    try:
        spaces = PolicyClient(f"http://127.0.0.1:{port}", token="secret", connect_timeout_s=20).spaces()
        assert spaces["action_space"]["n"] == 2
    finally:
        starter()
        env_holder[0].close()


def test_remote_client_reopens_its_episode_on_a_server_restarted_at_the_same_address(served):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    first = served(port=port)
    client = PolicyClient(first.address, token="secret", connect_timeout_s=20)
    episode = client.start_episode()
    first.close()  # the trial's process died: Tune restarts it from its checkpoint

    def play():
        action = client.get_action(episode, [0.5, 0, 0, 0])
        client.end_episode(episode, [0.6, 0, 0, 0])
        return action

    action = in_background(play)
    time.sleep(0.5)  # the client meets a closed port and retries
    second = served(port=port, connect_timeout_s=10)  # without the re-open: fails in 10 s
    obs, _ = second.reset()
    np.testing.assert_allclose(obs[0], [0.5, 0, 0, 0])
    _, _, terminated, _, _ = second.step(np.array([1]))
    assert action() == 1 and terminated.tolist() == [True]
    with pytest.raises(PolicyServerError, match="unknown episode"):  # no restart: a 404 stays one
        client.get_action("never-started", [0, 0, 0, 0])
