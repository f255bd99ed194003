"""`PolicyClient`: a simulator's side of the policy server, with RLlib's client calls.

    client = PolicyClient("http://127.0.0.1:40123", token="...", inference="remote")
    episode = client.start_episode()
    action = client.get_action(episode, obs)
    client.log_returns(episode, reward)
    client.end_episode(episode, obs)

With `inference="remote"` the server computes every action (one HTTP request per step).
With `inference="local"` the client holds a copy of the policy (pulled from the server, and
pulled again when the server's is newer: checked when an episode starts, and every
`update_interval_s` within one), acts
itself, and sends an episode's experience in one request when it ends (or every
`flush_steps` steps of a long episode). Local inference needs torch; the protocol itself
is plain HTTP and JSON (docs/external.md), for clients in any language.
"""

from __future__ import annotations

import pickle
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import requests


class PolicyServerError(RuntimeError):
    """The server refused a request; the message is its reason."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


@dataclass
class _LocalEpisode:
    training: bool
    observations: list[Any] = field(default_factory=list)
    actions: list[Any] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    extras: dict[str, list[float]] = field(default_factory=dict)


class PolicyClient:
    def __init__(
        self,
        address: str,
        inference: str = "remote",
        token: str | None = None,
        *,
        update_interval_s: float = 2.0,
        flush_steps: int = 128,
        timeout_s: float = 120.0,
        connect_timeout_s: float = 60.0,
        verify: bool | str = True,
    ):
        if inference not in ("remote", "local"):
            raise ValueError(f"inference must be 'remote' or 'local', got {inference!r}")
        self.address = address.rstrip("/")
        self.inference = inference
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token or ''}"
        self.verify = verify
        """Passed with every request: a Session's own `verify` loses to REQUESTS_CA_BUNDLE."""
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.update_interval_s = update_interval_s
        self.flush_steps = flush_steps
        self.policy: Any = None
        self.policy_version = -1
        self._checked_at = -np.inf
        self._episodes: dict[str, _LocalEpisode] = {}
        self._generator: Any = None
        self._reconnects = 0
        """How many times the server could not be reached and then could: a restarted server
        (Tune retrying the trial from its checkpoint) knows none of the running episodes."""

    # -- RLlib's client calls --------------------------------------------------------------

    def start_episode(self, episode_id: str | None = None, training_enabled: bool = True) -> str:
        """Open an episode; returns its id."""
        if self.inference == "local":
            self._refresh_policy(check_now=True)  # each episode acts with the newest policy
            episode_id = episode_id or uuid.uuid4().hex
            self._episodes[episode_id] = _LocalEpisode(training_enabled)
        body = {"training_enabled": training_enabled}
        if episode_id is not None:
            body["episode_id"] = episode_id
        return self._post("/episodes", body)["episode_id"]

    def get_action(self, episode_id: str, observation: Any) -> Any:
        """The policy's (exploring) action for `observation`."""
        if self.inference == "remote":
            body = {"observation": _json(observation)}
            return self._episode_post(episode_id, "action", body)["action"]
        episode = self._episodes[episode_id]
        self._refresh_policy()
        import torch

        policy = self.policy
        encoded = {key: value[None] for key, value in policy.layout.encode_one(observation).items()}
        with torch.no_grad():
            action, extras, _ = policy.explore(encoded, {}, [self._generator])
        env_action = policy.env_actions(action)[0, 0]
        if episode.training:
            self._record(
                episode_id, episode, observation, env_action, {k: float(v[0, 0]) for k, v in extras.items()}
            )
        return int(env_action) if np.ndim(env_action) == 0 else env_action.tolist()

    def log_action(self, episode_id: str, observation: Any, action: Any) -> None:
        """Record that the simulator took `action` (its own choice) on `observation`."""
        if self.inference == "remote":
            body = {"observation": _json(observation), "action": _json(action)}
            self._episode_post(episode_id, "log_action", body)
            return
        episode = self._episodes[episode_id]
        if episode.training:
            self._record(episode_id, episode, observation, action, {})

    def log_returns(self, episode_id: str, reward: float, info: dict[str, Any] | None = None) -> None:
        """Reward for the last action (rewards logged before the next action add up)."""
        if self.inference == "remote":
            self._episode_post(episode_id, "returns", {"reward": float(reward)})
            return
        episode = self._episodes[episode_id]
        if episode.rewards:
            episode.rewards[-1] += float(reward)

    def end_episode(self, episode_id: str, observation: Any, truncated: bool = False) -> None:
        """End the episode at `observation`: terminal, or cut short (`truncated`)."""
        if self.inference == "remote":
            body = {"observation": _json(observation), "truncated": truncated}
            self._episode_post(episode_id, "end", body)
            return
        episode = self._episodes.pop(episode_id)
        end = {"final_observation": _json(observation), "truncated": truncated, "terminated": not truncated}
        self._post(f"/episodes/{episode_id}/experience", {**self._experience(episode), **end})

    def spaces(self) -> dict[str, Any]:
        """The server's observation and action spaces, as spec dicts."""
        return self._get("/spaces").json()

    def close(self) -> None:
        self.session.close()

    # -- local inference -------------------------------------------------------------------

    def _record(self, episode_id: str, episode: _LocalEpisode, obs: Any, action: Any, extras: dict) -> None:
        if len(episode.actions) >= self.flush_steps:  # a long episode goes in parts
            self._post(f"/episodes/{episode_id}/experience", self._experience(episode))
            episode.observations, episode.actions, episode.rewards, episode.extras = [], [], [], {}
        episode.observations.append(_json(obs))
        episode.actions.append(_json(action))
        episode.rewards.append(0.0)
        for key, value in extras.items():
            episode.extras.setdefault(key, []).append(value)

    @staticmethod
    def _experience(episode: _LocalEpisode) -> dict[str, Any]:
        extras = {k: v for k, v in episode.extras.items() if len(v) == len(episode.actions)}
        return {
            "observations": episode.observations,
            "actions": episode.actions,
            "rewards": episode.rewards,
            "extras": extras,
        }

    def _refresh_policy(self, check_now: bool = False) -> None:
        """Pull the server's policy if it is newer than ours (checked at every episode's start,
        and every update_interval_s within an episode)."""
        now = time.monotonic()
        if self.policy is not None and not check_now and now - self._checked_at < self.update_interval_s:
            return
        self._checked_at = now
        if self.policy is not None and self._get("/policy/version").json()["version"] == self.policy_version:
            return
        import torch

        torch.set_num_threads(1)
        # The server is the trial this client trains for, authenticated by its token.
        payload = pickle.loads(self._get("/policy").content)
        self.policy, self.policy_version = payload["policy"], payload["version"]
        if self._generator is None:
            self._generator = torch.Generator().manual_seed(int.from_bytes(uuid.uuid4().bytes[:4], "little"))

    # -- HTTP ------------------------------------------------------------------------------

    def _episode_post(self, episode_id: str, call: str, body: dict[str, Any]) -> dict[str, Any]:
        """A remote episode's call. If the server was unreachable in between and now does not
        know the episode (it restarted), the episode is opened again under its id on the new
        server and the call repeated: the simulator goes on, its steps before the restart
        are lost to training."""
        reconnects = self._reconnects
        try:
            return self._post(f"/episodes/{episode_id}/{call}", body)
        except PolicyServerError as error:
            if error.status != 404 or self._reconnects == reconnects:
                raise
        self._post("/episodes", {"episode_id": episode_id})
        return self._post(f"/episodes/{episode_id}/{call}", body)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", path, json=body).json()

    def _get(self, path: str) -> requests.Response:
        return self._request("GET", path)

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request; while the server cannot be reached (not started yet, as in attach
        mode, or restarting) it is retried with backoff for up to `connect_timeout_s`."""
        deadline = time.monotonic() + self.connect_timeout_s
        delay = 0.1
        failed = False
        while True:
            try:
                response = self.session.request(
                    method, self.address + path, timeout=self.timeout_s, verify=self.verify, **kwargs
                )
                self._reconnects += failed
                return _checked(response)
            except requests.exceptions.SSLError:
                raise  # a certificate the client does not trust: waiting will not help
            except requests.ConnectionError:
                failed = True
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(2 * delay, 5.0)


def _checked(response: requests.Response) -> requests.Response:
    if response.status_code >= 400:
        try:
            reason = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            reason = response.text[:200]
        raise PolicyServerError(f"{response.status_code} from {response.url}: {reason}", response.status_code)
    return response


def _json(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _json(v) for key, v in value.items()}
    if isinstance(value, tuple):
        return [_json(v) for v in value]
    return np.asarray(value).tolist()
