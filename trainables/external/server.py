"""The policy server: an aiohttp app on its own event loop thread that turns simulators'
requests into per-slot events, which `ExternalVectorEnv` consumes in one batched step.

Every connected training episode holds one slot (of `num_slots`) from its first action to
its end; episodes beyond the slots wait for one to free. A `get_action` request puts an
event (observation, reward logged since the previous action) on its slot's queue and waits
until the vector env's next step answers it: so concurrent requests are answered by one
forward pass. Episodes with `training_enabled: false` take no slot and are answered at
once by a copy of the policy. Every error is a 4xx JSON answer `{"error": reason}`.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import pickle
import secrets
import ssl
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import orjson

from rlsweep.trainables.external.spaces import from_json, space_spec, to_json


@dataclass
class Event:
    """What one slot's episode sent for one step of the vector env."""

    obs: Any
    reward: float
    end: str | None = None
    """None while the episode runs, "terminated" or "truncated" at its end."""
    reply: asyncio.Future | None = None
    """Awaits the action (get_action), or the step past a bulk of experience; None otherwise."""
    action: Any = None
    """The client's own action, in the env's form."""
    extras: dict[str, float] = field(default_factory=dict)
    """Per-step policy outputs a local-inference client computed (PPO's logprob and value)."""


@dataclass
class Episode:
    id: str
    slot: int | None
    """None for an episode that does not train."""
    holds_slot: bool = False
    reward: float = 0.0
    """Reward logged since the last action."""
    waiting: bool = False
    """A get_action of this episode awaits its answer."""


class Slot:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.claims = 0
        """Episodes assigned to this slot that have not ended."""
        self.events: deque[Event] = deque()
        """Filled by the server's loop (`PolicyServer.put`), emptied by the vector env."""
        self.holder: Episode | None = None


class RequestError(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


class PolicyServer:
    """Serves one vector env's slots on `host:port` (port 0: the OS picks a free one)."""

    def __init__(
        self,
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Space,
        num_slots: int,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        max_request_bytes: int = 1 << 20,
        tls_cert: str | None = None,
        tls_key: str | None = None,
    ):
        self.observation_space = observation_space
        self.action_space = action_space
        self.num_slots = num_slots
        self.host, self.port = host, port
        self.token = token or secrets.token_urlsafe(16)
        self.max_request_bytes = max_request_bytes
        self.tls = (tls_cert, tls_key) if tls_cert else None
        self.episodes: dict[str, Episode] = {}
        self.slots: list[Slot] = []
        self.policy: Any = None
        """A one-seed copy of the policy (set by the vector env when the weights change)."""
        self.policy_version = 0
        self._policy_bytes: tuple[int, bytes] | None = None
        self.act_freely: Callable[[Any], Any] | None = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="policy-server")
        self.address = ""
        self._need: set[int] = set()
        """Slots the vector env waits for; the loop wakes it once when the last one arrives."""
        self._need_lock = threading.Lock()
        self._arrived = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> str:
        """Bind and serve in a background thread; returns the address clients connect to."""
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=30)
        return self.address

    async def _start(self) -> None:
        from aiohttp import web

        self.slots = [Slot() for _ in range(self.num_slots)]
        # The token check wraps each handler (an aiohttp middleware costs more per request).
        guard = self._guarded
        app = web.Application(client_max_size=self.max_request_bytes)
        app.add_routes(
            [
                web.get("/health", guard(self._health)),
                web.get("/spaces", guard(self._spaces)),
                web.get("/policy", guard(self._policy)),
                web.get("/policy/version", guard(self._version)),
                web.post("/episodes", guard(self._start_episode)),
                web.post("/episodes/{id}/action", guard(self._get_action)),
                web.post("/episodes/{id}/log_action", guard(self._log_action)),
                web.post("/episodes/{id}/returns", guard(self._log_returns)),
                web.post("/episodes/{id}/end", guard(self._end_episode)),
                web.post("/episodes/{id}/experience", guard(self._experience)),
            ]
        )
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self.runner.setup()
        context = None
        if self.tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self.tls)
        site = web.TCPSite(self.runner, self.host, self.port, ssl_context=context, backlog=1024)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # the port the OS picked for port 0
        self.address = f"{'https' if self.tls else 'http'}://{self.host}:{port}"

    def stop(self) -> None:
        if not self.thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self._stop(), self.loop)
        try:
            future.result(timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)

    async def _stop(self) -> None:
        # Requests still waiting for a step that will not come are answered "stopping" (410).
        for slot in self.slots:
            while slot.events:
                event = slot.events.popleft()
                if event.reply is not None and not event.reply.done():
                    event.reply.set_result(None)
        await self.runner.cleanup()

    # -- what the vector env calls (from its own thread) ----------------------------------

    def wait_for_events(self, indices: Any, timeout: float) -> bool:
        """Block until each slot in `indices` has an event queued (True) or `timeout` passes
        (False): the env's thread is woken once per step, not once per request, so the loop's
        thread keeps the GIL while it handles a step's requests."""
        with self._need_lock:
            self._need = {index for index in indices if not self.slots[index].events}
            if not self._need:
                return True
            self._arrived.clear()
        return self._arrived.wait(timeout)

    def put(self, index: int, event: Event) -> None:
        """Queue `event` on slot `index` (in the loop's thread)."""
        self.slots[index].events.append(event)
        with self._need_lock:
            if index in self._need:
                self._need.discard(index)
                if not self._need:
                    self._arrived.set()

    def answer(self, answers: list[tuple[Event, Any]]) -> None:
        """Send each action to the request waiting on its event: one wake-up of the loop
        for a whole step's answers."""
        replies = [(event.reply, action) for event, action in answers if event.reply is not None]
        if replies:
            self.loop.call_soon_threadsafe(_resolve_all, replies)

    def abandon(self, slot: int, last_obs: Any) -> bool:
        """End the episode holding `slot` as truncated at `last_obs` if its client went
        silent (nothing queued); False if the slot holds no episode."""
        return asyncio.run_coroutine_threadsafe(self._abandon(slot, last_obs), self.loop).result(timeout=10)

    async def _abandon(self, index: int, last_obs: Any) -> bool:
        slot = self.slots[index]
        if slot.events:
            return True
        episode = slot.holder
        if episode is None:
            return False
        self.put(index, Event(last_obs, episode.reward, end="truncated"))
        self._finish(episode)
        return True

    def set_policy(self, policy: Any, version: int) -> None:
        self.policy, self.policy_version = policy, version

    # -- requests -------------------------------------------------------------------------

    def _guarded(self, handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """Every request: the token first, then the handler, whose refusals become JSON."""
        from aiohttp import web

        token = self.token.encode()

        @functools.wraps(handler)
        async def guarded(request: Any) -> Any:
            given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), token):
                return _error(401, "missing or wrong token: send 'Authorization: Bearer <token>'")
            try:
                return await handler(request)
            except RequestError as error:
                return _error(error.status, str(error))
            except web.HTTPRequestEntityTooLarge:
                return _error(413, f"request larger than the limit of {self.max_request_bytes} bytes")

        return guarded

    async def _body(self, request: Any) -> dict[str, Any]:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError as error:
            raise RequestError(400, f"malformed JSON: {error}") from None
        if not isinstance(body, dict):
            raise RequestError(400, "the body must be a JSON object")
        return body

    def _episode(self, request: Any) -> Episode:
        episode = self.episodes.get(request.match_info["id"])
        if episode is None:
            raise RequestError(
                404, f"unknown episode id {request.match_info['id']!r} (never started or ended)"
            )
        return episode

    def _obs(self, body: dict[str, Any], key: str = "observation") -> Any:
        if key not in body:
            raise RequestError(400, f"missing {key!r}")
        try:
            return from_json(self.observation_space, body[key], key)
        except ValueError as error:
            raise RequestError(400, str(error)) from None

    def _action(self, body: dict[str, Any]) -> Any:
        if "action" not in body:
            raise RequestError(400, "missing 'action'")
        try:
            return from_json(self.action_space, body["action"], "action")
        except ValueError as error:
            raise RequestError(400, str(error)) from None

    async def _acquire(self, episode: Episode) -> Slot:
        slot = self.slots[episode.slot]
        if not episode.holds_slot:
            await slot.lock.acquire()
            if episode.id not in self.episodes:  # ended while it waited for the slot
                slot.lock.release()
                raise RequestError(404, f"episode {episode.id!r} ended")
            episode.holds_slot, slot.holder = True, episode
        return slot

    def _finish(self, episode: Episode) -> None:
        self.episodes.pop(episode.id, None)
        if episode.slot is None:
            return
        slot = self.slots[episode.slot]
        slot.claims -= 1
        if episode.holds_slot:
            episode.holds_slot, slot.holder = False, None
            slot.lock.release()

    async def _health(self, request: Any) -> Any:
        return _json({"ok": True, "episodes": len(self.episodes), "slots": self.num_slots})

    async def _spaces(self, request: Any) -> Any:
        return _json(
            {
                "observation_space": space_spec(self.observation_space),
                "action_space": space_spec(self.action_space),
            }
        )

    async def _version(self, request: Any) -> Any:
        return _json({"version": self.policy_version})

    async def _policy(self, request: Any) -> Any:
        """The one-seed policy, pickled: for the Python client's local inference."""
        from aiohttp import web

        if self.policy is None:
            raise RequestError(409, "the policy is not ready yet")
        if self._policy_bytes is None or self._policy_bytes[0] != self.policy_version:
            payload = {"version": self.policy_version, "policy": self.policy}
            self._policy_bytes = (self.policy_version, pickle.dumps(payload))
        return web.Response(body=self._policy_bytes[1], content_type="application/octet-stream")

    async def _start_episode(self, request: Any) -> Any:
        body = await self._body(request)
        episode_id = body.get("episode_id") or uuid.uuid4().hex
        if not isinstance(episode_id, str):
            raise RequestError(400, "'episode_id' must be a string")
        if episode_id in self.episodes:
            raise RequestError(409, f"episode {episode_id!r} is already running")
        training = body.get("training_enabled", True)
        if not isinstance(training, bool):
            raise RequestError(400, "'training_enabled' must be true or false")
        slot = None
        if training:
            slot = min(range(self.num_slots), key=lambda index: self.slots[index].claims)
            self.slots[slot].claims += 1
        self.episodes[episode_id] = Episode(episode_id, slot)
        return _json({"episode_id": episode_id})

    async def _get_action(self, request: Any) -> Any:
        body = await self._body(request)
        episode = self._episode(request)
        obs = self._obs(body)
        if episode.slot is None:
            return _json({"action": to_json(self._act_freely(obs))})
        if episode.waiting:
            raise RequestError(409, f"episode {episode.id!r} already waits for an action")
        await self._acquire(episode)
        reply = self.loop.create_future()
        self.put(episode.slot, Event(obs, episode.reward, reply=reply))
        episode.reward, episode.waiting = 0.0, True
        try:
            action = await reply
        finally:
            episode.waiting = False
        if action is None:
            raise RequestError(410, "the server is stopping")
        return _json({"action": to_json(action)})

    async def _log_action(self, request: Any) -> Any:
        body = await self._body(request)
        episode = self._episode(request)
        obs, action = self._obs(body), self._action(body)
        if episode.slot is not None:
            await self._acquire(episode)
            self.put(episode.slot, Event(obs, episode.reward, action=action))
            episode.reward = 0.0
        return _json({})

    async def _log_returns(self, request: Any) -> Any:
        body = await self._body(request)
        episode = self._episode(request)
        reward = body.get("reward")
        if isinstance(reward, bool) or not isinstance(reward, (int, float)) or not np.isfinite(reward):
            raise RequestError(400, f"'reward' must be a finite number, got {reward!r}")
        episode.reward += float(reward)
        return _json({})

    async def _end_episode(self, request: Any) -> Any:
        body = await self._body(request)
        episode = self._episode(request)
        obs = self._obs(body)
        end = "truncated" if body.get("truncated", False) else "terminated"
        if episode.waiting:
            raise RequestError(409, f"episode {episode.id!r} still waits for an action")
        if episode.holds_slot:
            self.put(episode.slot, Event(obs, episode.reward, end=end))
        self._finish(episode)
        return _json({})

    async def _experience(self, request: Any) -> Any:
        """A local-inference client's steps in bulk: observations [T] (each acted on),
        actions [T], rewards [T] (each earned by its action), optional extras {name: [T]},
        and optionally the episode's end (`final_observation` with `terminated` or
        `truncated`)."""
        body = await self._body(request)
        episode = self._episode(request)
        observations, actions, rewards = (body.get(key) for key in ("observations", "actions", "rewards"))
        if not all(isinstance(part, list) for part in (observations, actions, rewards)):
            raise RequestError(400, "'observations', 'actions' and 'rewards' must be lists")
        if not len(observations) == len(actions) == len(rewards):
            raise RequestError(400, "'observations', 'actions' and 'rewards' must have the same length")
        extras = body.get("extras") or {}
        if not isinstance(extras, dict) or any(
            not isinstance(v, list) or len(v) != len(actions) for v in extras.values()
        ):
            raise RequestError(400, "'extras' must map names to lists as long as 'actions'")
        try:
            steps = [
                Event(
                    from_json(self.observation_space, obs, f"observations[{t}]"),
                    float(rewards[t - 1]) if t else 0.0,
                    action=from_json(self.action_space, action, f"actions[{t}]"),
                    extras={name: float(values[t]) for name, values in extras.items()},
                )
                for t, (obs, action) in enumerate(zip(observations, actions, strict=True))
            ]
            end = None
            if body.get("terminated") or body.get("truncated"):
                end = Event(
                    self._obs(body, "final_observation"),
                    float(rewards[-1]) if rewards else 0.0,
                    end="truncated" if body.get("truncated") else "terminated",
                )
        except (TypeError, ValueError) as error:
            raise RequestError(400, str(error)) from None
        if episode.slot is None:
            if end is not None:
                self._finish(episode)
            return _json({"steps": 0})
        await self._acquire(episode)
        replayed = None
        if steps:
            steps[0].reward += episode.reward
            # Answered when the vector env steps past the last of them: the client waits for
            # that, so simulators cannot run ahead of the learner with ever staler experience.
            replayed = steps[-1].reply = self.loop.create_future()
        for event in steps:
            self.put(episode.slot, event)
        episode.reward = float(rewards[-1]) if rewards and end is None else 0.0
        if end is not None:
            self.put(episode.slot, end)
        try:
            if replayed is not None and await replayed is None:
                raise RequestError(410, "the server is stopping")
        finally:
            # The slot stays this episode's until it is replayed: a new episode that took it
            # earlier would wait behind it while another slot waits for an episode.
            if end is not None:
                self._finish(episode)
        return _json({"steps": len(steps)})

    def _act_freely(self, obs: Any) -> Any:
        if self.act_freely is None:
            raise RequestError(409, "the policy is not ready yet")
        return self.act_freely(obs)


def _resolve_all(replies: list[tuple[asyncio.Future, Any]]) -> None:
    for future, value in replies:
        if not future.done():
            future.set_result(value)


def _json(payload: dict[str, Any], status: int = 200) -> Any:
    """A JSON answer, encoded by orjson (a quarter of `web.json_response`'s time)."""
    from aiohttp import web

    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    return web.Response(body=body, status=status, content_type="application/json")


def _error(status: int, reason: str) -> Any:
    return _json({"error": reason}, status)
