"""Atari games (`ALE/Pong-v5`, ...) as vector envs with the standard preprocessing, stepped by
ale-py's C++ vector env.

The preprocessing is the DQN paper's (Mnih et al. 2015), as CleanRL, SB3 and RLlib apply it,
each step switchable through `env_config` (see `AtariConfig`): up to 30 no-op actions after
a reset, the action repeated for 4 frames with the last two max-pooled, frames resized to
84x84 grayscale, the last 4 stacked into one uint8 observation [4, 84, 84]; for the learner
only, a lost life ends its episode and rewards are clipped to their sign. The returns
reported in `info["episode"]` (and so `episode_return_*`, in training and evaluation) are
always the raw score of whole games.

ale-py's `AtariVectorEnv` does the per-frame work in C++ threads; `AtariGames` adds what
rlsweep needs on top: the learner's signals (life loss, clipped rewards) next to raw-score
episode statistics, and gymnasium's next-step autoreset contract for life losses too. It
steps Pong 1.6x as fast as gymnasium's Python wrappers (AtariPreprocessing and
FrameStackObservation) over single envs in a SyncVectorEnv: `benchmarks/atari_throughput.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec

from rlsweep.trainables.config import ConfigError, build_config, check_range

ALE_NAMESPACE = "ALE/"
ATARI_ENTRY_POINT = "ale_py.env:AtariEnv"


@dataclass
class AtariConfig:
    """`env_config` keys of an Atari env; each preprocessing step can be switched off."""

    noop_max: int = 30
    """Up to this many no-op actions after a reset, so games start in different states; 0: none."""
    frame_skip: int = 4
    """Emulator frames per agent step, the action repeated in each."""
    max_pool: bool = True
    """Observe the pixel-wise max of the last two skipped frames (some sprites flicker)."""
    screen_size: int = 84
    """Height and width frames are resized to."""
    grayscale: bool = True
    """One channel per frame; false keeps RGB (3 channels per frame)."""
    frame_stack: int = 4
    """Most recent frames per observation, stacked along the channel axis."""
    episodic_life: bool = True
    """For the learner, losing a life ends the episode (terminated: no bootstrap); the game
    goes on, and reported returns stay whole games'."""
    clip_rewards: bool = True
    """For the learner, rewards become their sign (-1, 0, 1); reported returns stay the raw score."""
    fire_reset: bool = True
    """Press FIRE when a game starts and after a lost life, in games that need it to go on (Breakout)."""
    repeat_action_probability: float | None = None
    """Sticky actions (Machado et al. 2018): the chance the emulator keeps the previous action
    each frame; unset: the env id's (0.25 for v5 ids)."""
    full_action_space: bool | None = None
    """All 18 joystick actions instead of the game's minimal set; unset: the env id's."""
    max_episode_frames: int | None = None
    """Emulator frames after which a game is truncated; unset: the env id's (108,000: 30 minutes)."""
    num_threads: int = 1
    """ALE's C++ threads per vector env (a rollout worker reserves one CPU)."""

    def validate(self) -> None:
        for key in ("frame_skip", "screen_size", "frame_stack", "num_threads"):
            check_range(f"env_config.{key}", getattr(self, key), 1)
        check_range("env_config.noop_max", self.noop_max, 0)
        check_range("env_config.repeat_action_probability", self.repeat_action_probability, 0, 1)
        check_range("env_config.max_episode_frames", self.max_episode_frames, 1)

    @classmethod
    def of(cls, env_config: dict[str, Any] | None) -> AtariConfig:
        """The preprocessing `env_config` asks for; a ConfigError names a bad key."""
        return build_config(cls, dict(env_config or {}), prefix="env_config.")


def ensure_registered(env_id: str) -> None:
    """Register the ALE/ ids with gymnasium (importing ale-py) when `env_id` is one of them."""
    if not env_id.startswith(ALE_NAMESPACE) or env_id in gym.registry:
        return
    try:
        import ale_py
    except ImportError:
        raise ConfigError(
            f'env {env_id!r} needs ale-py, which is not installed: pip install "rlsweep[atari]"'
        ) from None
    gym.register_envs(ale_py)


def make_vector_env(spec: EnvSpec, num_envs: int, env_config: dict[str, Any] | None = None) -> AtariGames:
    """`num_envs` copies of the Atari game of `spec` with the preprocessing `env_config` asks for."""
    from ale_py.vector_env import AtariVectorEnv

    config = AtariConfig.of(env_config)
    game = spec.kwargs
    native = AtariVectorEnv(
        game["game"],
        num_envs,
        num_threads=config.num_threads,
        frameskip=config.frame_skip,
        maxpool=config.max_pool,
        img_height=config.screen_size,
        img_width=config.screen_size,
        grayscale=config.grayscale,
        stack_num=config.frame_stack,
        noop_max=config.noop_max,
        use_fire_reset=config.fire_reset,
        # Life losses and reward clipping are AtariGames' (the raw score must stay visible).
        episodic_life=False,
        life_loss_info=False,
        reward_clipping=False,
        repeat_action_probability=_or(
            config.repeat_action_probability, game.get("repeat_action_probability", 0.25)
        ),
        full_action_space=_or(config.full_action_space, game.get("full_action_space", False)),
        max_num_frames_per_episode=_or(
            config.max_episode_frames, game.get("max_num_frames_per_episode", 108_000)
        ),
        autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP,
    )
    return AtariGames(native, config)


def spaces(
    spec: EnvSpec, env_config: dict[str, Any] | None = None
) -> tuple[gym.spaces.Box, gym.spaces.Discrete]:
    """The observation and action spaces of one preprocessed game."""
    env = make_vector_env(spec, 1, env_config)
    result = env.single_observation_space, env.single_action_space
    env.close()
    return result


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


class AtariGames(gym.vector.VectorWrapper):
    """ale-py's vector env as rlsweep's workers step it: next-step autoreset, uint8
    observations [stack * channels, H, W], and for each step the learner's signals next to
    the game's raw score.

    The learner's episode ends when the game does or, with `episodic_life`, when a life is
    lost. After a lost life the next step plays the restart action (FIRE where the game has
    it, else NOOP) whatever the policy chose, and reports reward 0: to the learner it is the
    autoreset step that follows every episode end, while the game simply goes on (as in
    baselines' EpisodicLifeEnv). `info["episode"]` holds the raw score and length, in agent
    steps, of every game that ended, as gymnasium's RecordEpisodeStatistics does.
    """

    def __init__(self, env: gym.vector.VectorEnv, config: AtariConfig):
        super().__init__(env)
        self.config = config
        stack, height, width, *rgb = env.single_observation_space.shape
        channels = stack * (rgb[0] if rgb else 1)
        self.single_observation_space = gym.spaces.Box(0, 255, (channels, height, width), np.uint8)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.metadata = {**env.metadata, "autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}
        action_set = list(env.ale.get_action_set())
        fire = [i for i, action in enumerate(action_set) if action.name == "FIRE"]
        self.restart_action = fire[0] if config.fire_reset and fire else 0
        shape = (self.num_envs,)
        self.scores = np.zeros(shape)  # raw score of each env's current game
        self.lengths = np.zeros(shape, dtype=np.int64)  # its agent steps
        self.lives = np.zeros(shape, dtype=np.int64)
        self.game_over = np.zeros(shape, dtype=bool)  # the last step ended the game: next one resets it
        self.life_lost = np.zeros(shape, dtype=bool)  # the last step lost a life: next one restarts

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.scores[:] = self.lengths[:] = 0
        self.lives[:] = info["lives"]
        self.game_over[:] = self.life_lost[:] = False
        return self._observation(obs), info

    def step(self, actions: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict]:
        actions = np.where(self.life_lost, self.restart_action, np.asarray(actions, dtype=np.int64))
        obs, raw_reward, terminated, truncated, info = self.env.step(actions)
        # The step after a game ended reset it: it starts the next game's statistics.
        playing = ~self.game_over
        self.scores = np.where(playing, self.scores + raw_reward, 0.0)
        self.lengths = np.where(playing, self.lengths + 1, 0)
        game_over = terminated | truncated
        if game_over.any():
            info["episode"] = {"r": self.scores.copy(), "l": self.lengths.copy()}
            info["_episode"] = game_over.copy()

        lives = info["lives"].astype(np.int64)
        life_lost = self.config.episodic_life & ~game_over & (lives < self.lives)
        reward = np.sign(raw_reward) if self.config.clip_rewards else raw_reward
        reward = np.where(self.life_lost, 0, reward).astype(np.float32)  # a restart step earns nothing
        self.lives, self.game_over, self.life_lost = lives, game_over, life_lost
        return self._observation(obs), reward, terminated | life_lost, truncated, info

    def _observation(self, obs: np.ndarray) -> np.ndarray:
        if obs.ndim == 4:
            return obs
        # RGB frames [N, stack, H, W, 3] -> channels first [N, stack * 3, H, W]
        num_envs, stack, height, width, rgb = obs.shape
        return np.ascontiguousarray(obs.transpose(0, 1, 4, 2, 3)).reshape(
            num_envs, stack * rgb, height, width
        )
