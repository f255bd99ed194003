"""Self-play with a league, for two-player games: the learner plays copies of itself, frozen
snapshots of its past selves, and fixed opponents.

Every `snapshot_interval` iterations a copy of the learner's weights, frozen, joins the
league. Each training episode draws its opponent: the live learner itself with chance
`self_play_fraction` (both sides' moves then train it), a fixed opponent with chance
`fixed_opponent_fraction`, else a snapshot: the newest (`latest`), any (`uniform`), or
those that beat the learner most often (`prioritized`, PFSP: weight = 1 - the learner's
recent score against it, plus a floor). The learner's side is drawn anew every episode.

Every game against a league member updates Elo ratings (Elo 1978): with ratings R_L of the
learner and R_O of its opponent, E = 1 / (1 + 10^((R_O - R_L) / 400)) is the learner's
expected score, S its score (1 win, 1/2 draw, 0 loss), and both move by K (S - E) in
opposite directions. `league/elo` reports the learner's.
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from rlsweep.trainables.config import ConfigError, check_range
from rlsweep.trainables.sampling.multi_agent_worker import EpisodeRecord, League

SELF = "self"
ELO_START = 1000.0
ELO_K = 16.0
"""How far one game moves a rating (the usual K for established players)."""
RESULT_WINDOW = 200
"""Outcomes per opponent the league remembers (win/draw/loss rates, prioritized sampling)."""


@dataclass
class SelfPlayConfig:
    """Self-play settings; the learner is `policies`' first id (or the shared policy)."""

    snapshot_interval: int = 10
    """Iterations between frozen snapshots of the learner joining the league."""
    snapshot_win_rate: float | None = None
    """If set, a snapshot also joins as soon as the learner's recent win rate against the
    league's snapshots reaches this (RLlib's connect-four example gates on 0.95)."""
    opponent_sampling: Literal["latest", "uniform", "prioritized"] = "latest"
    """How an episode's snapshot opponent is drawn."""
    self_play_fraction: float = 0.5
    """Chance an episode's opponent is the live learner itself."""
    fixed_opponents: tuple[str, ...] = ("random",)
    """Opponents that never learn: "random" (uniform over legal actions) or "module:function"
    with (observation, action_mask, rng) -> action."""
    fixed_opponent_fraction: float = 0.2
    """Chance an episode's opponent is one of `fixed_opponents` (uniformly)."""
    max_snapshots: int = 20
    """Snapshots kept; the oldest leaves when a new one joins."""
    evaluation_games: int = 100
    """Greedy games against each fixed opponent per evaluation, half as first player."""

    def validate(self) -> None:
        check_range("self_play.snapshot_interval", self.snapshot_interval, 1)
        check_range("self_play.snapshot_win_rate", self.snapshot_win_rate, 0, 1)
        check_range("self_play.self_play_fraction", self.self_play_fraction, 0, 1)
        check_range("self_play.fixed_opponent_fraction", self.fixed_opponent_fraction, 0, 1)
        check_range("self_play.max_snapshots", self.max_snapshots, 1)
        check_range("self_play.evaluation_games", self.evaluation_games, 2)
        if self.self_play_fraction + self.fixed_opponent_fraction > 1:
            raise ConfigError(
                "config keys 'self_play.self_play_fraction' + 'self_play.fixed_opponent_fraction' must not "
                f"exceed 1, got {self.self_play_fraction} + {self.fixed_opponent_fraction}"
            )
        if self.fixed_opponent_fraction > 0 and not self.fixed_opponents:
            raise ConfigError(
                "config key 'self_play.fixed_opponents' is empty but fixed_opponent_fraction > 0"
            )


def fixed_name(function: str) -> str:
    """A fixed opponent's name in results: "random", or the function's name."""
    return function.rpartition(":")[2] or function


class LeagueState:
    """The learner's league: its frozen snapshots and its recent results against each member."""

    def __init__(self, config: SelfPlayConfig, learner: str):
        self.config = config
        self.learner = learner
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.snapshot_count = 0
        self.fixed = {fixed_name(function): function for function in config.fixed_opponents}
        self.outcomes: dict[str, deque[int]] = {}
        self.ratings: dict[str, float] = {learner: ELO_START, **dict.fromkeys(self.fixed, ELO_START)}
        """Elo ratings of the learner and of every opponent it met; a snapshot starts at the
        learner's rating when it was taken."""

    def add_snapshot(self, weights: dict[str, Any]) -> str:
        """Freeze a deep copy of `weights` as the league's newest member; returns its name."""
        self.snapshot_count += 1
        name = f"snapshot_{self.snapshot_count}"
        self.snapshots[name] = copy.deepcopy(weights)
        self.ratings[name] = self.ratings[self.learner]
        for outcomes in (self.outcomes.get(old) for old in self.snapshots):
            if outcomes is not None:
                outcomes.clear()  # the win rate that gates the next snapshot starts afresh
        while len(self.snapshots) > self.config.max_snapshots:
            del self.snapshots[next(iter(self.snapshots))]
        return name

    def wants_snapshot(self, iteration: int) -> bool:
        """Whether a snapshot joins after `iteration` (1-based): every `snapshot_interval`
        iterations, or once the learner beats the current snapshots often enough."""
        if iteration % self.config.snapshot_interval == 0:
            return True
        threshold = self.config.snapshot_win_rate
        games = [o for name in self.snapshots for o in self.outcomes.get(name, ())]
        return (
            threshold is not None and len(games) >= 20 and float(np.mean(np.asarray(games) > 0)) >= threshold
        )

    def probabilities(self) -> dict[str, float]:
        """Opponent name -> the chance a training episode draws it."""
        cfg = self.config
        chances = {SELF: cfg.self_play_fraction}
        for name in self.fixed:
            chances[name] = cfg.fixed_opponent_fraction / len(self.fixed)
        rest = 1.0 - sum(chances.values())
        if not self.snapshots:
            chances[SELF] += rest
            return chances
        names = list(self.snapshots)
        if cfg.opponent_sampling == "latest":
            weights = np.array([0.0] * (len(names) - 1) + [1.0])
        elif cfg.opponent_sampling == "uniform":
            weights = np.ones(len(names))
        else:  # prioritized: those the learner scores worst against
            weights = np.array([1.0 - self.score(name) + 0.05 for name in names])
        for name, weight in zip(names, weights / weights.sum(), strict=True):
            chances[name] = rest * float(weight)
        return chances

    def score(self, name: str) -> float:
        """The learner's recent score against `name` in [0, 1] (a draw is half a win); 0.5 if unknown."""
        outcomes = self.outcomes.get(name)
        if not outcomes:
            return 0.5
        return float(np.mean([(o + 1) / 2 for o in outcomes]))

    def record(self, episodes: list[EpisodeRecord]) -> None:
        """Remember each game's outcome against its opponent and update both Elo ratings."""
        for episode in episodes:
            opponent = episode.opponent
            if opponent is None or opponent == SELF:
                continue
            self.outcomes.setdefault(opponent, deque(maxlen=RESULT_WINDOW)).append(episode.outcome)
            learner, other = self.ratings[self.learner], self.ratings.setdefault(opponent, ELO_START)
            expected = 1.0 / (1.0 + 10 ** ((other - learner) / 400))
            change = ELO_K * ((episode.outcome + 1) / 2 - expected)
            self.ratings[self.learner] = learner + change
            self.ratings[opponent] = other - change

    def for_workers(self) -> League:
        return League(self.learner, self.probabilities(), self.snapshots, self.fixed)

    def metrics(self) -> dict[str, float]:
        """Win/draw/loss rates of recent training games against each kind of opponent
        (fixed opponents by name, all snapshots together as "league")."""
        kinds: dict[str, list[int]] = {}
        for name, outcomes in self.outcomes.items():
            kind = name if name in self.fixed else "league"
            kinds.setdefault(kind, []).extend(outcomes)
        results = {
            "league/num_snapshots": float(len(self.snapshots)),
            "league/elo": self.ratings[self.learner],
        }
        for kind, outcomes in kinds.items():
            results.update(outcome_rates(outcomes, f"league/vs_{kind}/"))
        return results

    def state_dict(self) -> dict[str, Any]:
        return {
            "snapshots": self.snapshots,
            "snapshot_count": self.snapshot_count,
            "outcomes": {name: list(o) for name, o in self.outcomes.items()},
            "ratings": self.ratings,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.snapshots = state["snapshots"]
        self.snapshot_count = state["snapshot_count"]
        self.outcomes = {name: deque(o, maxlen=RESULT_WINDOW) for name, o in state["outcomes"].items()}
        self.ratings = state["ratings"]


def outcome_rates(outcomes: list[int], prefix: str) -> dict[str, float]:
    """Win, draw and loss rates of outcomes (1, 0, -1)."""
    values = np.asarray(outcomes)
    return {
        f"{prefix}win_rate": float(np.mean(values > 0)),
        f"{prefix}draw_rate": float(np.mean(values == 0)),
        f"{prefix}loss_rate": float(np.mean(values < 0)),
    }
