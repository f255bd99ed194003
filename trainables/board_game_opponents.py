"""Fixed opponents for two-player board games, as self-play leagues list them
(`self_play.fixed_opponents: ["random", "rlsweep.trainables.board_game_opponents:tictactoe_lookahead"]`).
Each takes (observation, action_mask, rng) and returns a legal action."""

from __future__ import annotations

from typing import Any

import numpy as np

TICTACTOE_LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]


def tictactoe_lookahead(obs: dict[str, Any], mask: np.ndarray | None, rng: np.random.Generator) -> int:
    """PettingZoo tictactoe_v3's one-step lookahead player: win if it can, block the
    opponent's win if it must, else a random legal move. The observation's planes are the
    mover's marks and the opponent's, a cell's index in the flattened board its action."""
    own = np.asarray(obs["observation"])[:, :, 0].reshape(9)
    theirs = np.asarray(obs["observation"])[:, :, 1].reshape(9)
    legal = np.flatnonzero(mask if mask is not None else obs["action_mask"])
    for marks in (own, theirs):  # first a winning move, then a blocking one
        for action in legal:
            if any(
                action in line and sum(marks[i] for i in line if i != action) == 2 for line in TICTACTOE_LINES
            ):
                return int(action)
    return int(rng.choice(legal))
