"""Env classes and factories in both constructor conventions: gymnasium's keyword parameters
(`gym.make(id, **kwargs)`) and RLlib's one config dict."""

import subprocess
import sys
import textwrap

import pytest

from rlsweep.trainables.config import ConfigError
from rlsweep.trainables.envs.build import make_env
from rlsweep.trainables.envs.names import resolve_env

CORRIDOR = textwrap.dedent(
    '''
    """The issue's gymnasium-style env: keyword parameters, no config dict."""
    import gymnasium as gym
    import numpy as np


    class Corridor(gym.Env):
        def __init__(self, length=10, max_steps=100):
            self.length, self.max_steps = length, max_steps
            self.observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
            self.action_space = gym.spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.position, self.steps = 0, 0
            return self._observation(), {"length": self.length}

        def step(self, action):
            self.position = max(0, self.position + (1 if action == 1 else -1))
            self.steps += 1
            done = self.position >= self.length
            return self._observation(), float(done), done, self.steps >= self.max_steps, {}

        def _observation(self):
            return np.array([self.position / self.length], dtype=np.float32)


    def make_corridor(length=10, max_steps=100):
        return Corridor(length, max_steps)


    def make_corridor_from_config(config):
        return Corridor(**config)
    '''
)


@pytest.fixture
def corridor(tmp_path, monkeypatch):
    (tmp_path / "corridor.py").write_text(CORRIDOR)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("corridor", None)


@pytest.mark.parametrize("env", ["corridor:Corridor", "corridor:make_corridor"])
def test_a_keyword_class_or_factory_gets_env_config_as_keywords(corridor, env):
    _, info = make_env(resolve_env(env), {"length": 6}).reset(seed=0)
    assert info == {"length": 6}


def test_an_rllib_style_factory_gets_env_config_as_one_dict(corridor):
    _, info = make_env(resolve_env("corridor:make_corridor_from_config"), {"length": 4}).reset(seed=0)
    assert info == {"length": 4}


def test_an_env_config_key_a_keyword_class_does_not_take_is_named(corridor):
    with pytest.raises(ConfigError) as error:
        make_env(resolve_env("corridor:Corridor"), {"lenght": 6})
    assert str(error.value) == (
        "env 'corridor:Corridor' takes no env_config key 'lenght' (did you mean 'length'?); "
        "it takes: length, max_steps"
    )


def test_an_unknown_env_config_key_is_one_line_from_rlsweep_train(corridor, capsys, monkeypatch):
    from rlsweep.cli import main

    monkeypatch.chdir(corridor)
    assert main(["train", "--env", "corridor:Corridor", "--set", "env_config.width=3"]) == 2
    assert capsys.readouterr().err == (
        "rlsweep: error: env 'corridor:Corridor' takes no env_config key 'width'; "
        "it takes: length, max_steps\n"
    )


def test_the_issues_corridor_class_trains_from_the_command_line(corridor):
    """`rlsweep train --env corridor:Corridor --set env_config.length=6`, run as a user runs
    it, from the folder that holds corridor.py (its own local Ray)."""
    command = [sys.executable, "-m", "rlsweep", "train", "--env", "corridor:Corridor"]
    command += ["--set", "env_config.length=6", "--timesteps", "1000", "--no-mlflow"]
    command += ["--results-dir", str(corridor / "results")]
    done = subprocess.run(command, cwd=corridor, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Trained PPO on corridor:Corridor" in done.stdout
