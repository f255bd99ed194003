"""Checking an experiment end to end before Ray starts: its env built, reset and stepped for
real, the algorithm against the env's spaces, configs sampled from the narrowed space against
both, and the stop target against what the env can return. `rlsweep check` prints what it
found; `rlsweep sweep` and `rlsweep train` run it first, so a mismatch is one line, not a
failed trial after Ray's start-up.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from rlsweep.experiment.hyperparameters import trial_hyperparameters
from rlsweep.experiment.runtime_env import code_on_path
from rlsweep.experiment.schema import Experiment
from rlsweep.experiment.space_check import SampledConfig, sample_configs
from rlsweep.trainables.algorithm_config import AlgorithmConfig
from rlsweep.trainables.config import ConfigError
from rlsweep.trainables.envs.check import EnvReport
from rlsweep.trainables.models.observations import ObservationLayout

SHOWN_CONFIGS = 3
"""Sampled configs `rlsweep check` prints."""

MODEL_KEYS = (
    "hidden_sizes", "activation", "cnn_channels", "use_lstm", "lstm_cell_size", "max_seq_len",
    "lstm_use_prev_action", "lstm_use_prev_reward",
    "use_attention", "attention_memory", "attention_dim", "attention_num_heads", "attention_num_layers",
)  # fmt: skip
"""Config keys that shape the policy's network."""

RETURN_METRICS = ("episode_return_mean", "episode_return_min", "episode_return_max")
"""Metrics (also under evaluation/) whose values are episode returns."""


@dataclass
class ExperimentCheck:
    """What checking an experiment found."""

    experiment: Experiment
    env: EnvReport
    sampled: list[SampledConfig]
    """Configs the narrowed space gives (the fixed config alone when nothing is searched)."""


def check_experiment(experiment: Experiment, *, run_env_checker: bool = True) -> ExperimentCheck:
    """Everything about `experiment` that only its env or algorithm can tell, checked without
    Ray; each problem is a one-line ConfigError.

    The env is built once, from the first sampled config (the env and env_config are the
    same in every trial), by `Algorithm.check_environment`, the check every trial's `setup`
    runs too. Every sampled config is then checked against the env's spaces.
    """
    with code_on_path(experiment.runtime_env):
        sampled = sample_configs(experiment)
        trainable = experiment.trainable
        report = trainable.check_environment(sampled[0].config, run_env_checker=run_env_checker)
        for sample in sampled[1:]:
            trainable.check_spaces(sample.config, report.observation_space, report.action_space)
        _check_held_out_seeds(experiment, sampled[0].config)
    _check_stop_target(experiment, report)
    return ExperimentCheck(experiment, report, sampled)


def _check_held_out_seeds(experiment: Experiment, config: AlgorithmConfig) -> None:
    """The held-out test trains each top config on `test.seeds` seeds as one batched trial;
    an algorithm that cannot batch seeds would fail only after the whole search."""
    if experiment.test is None or experiment.test.seeds == 1:
        return
    try:
        dataclasses.replace(config, num_seeds=experiment.test.seeds).validate()
    except ConfigError as error:
        raise ConfigError(
            f"experiment key 'test.seeds' is {experiment.test.seeds}, but the held-out test cannot "
            f"train them: {error}; set test.seeds: 1 or test: null"
        ) from None


def _check_stop_target(experiment: Experiment, env: EnvReport) -> None:
    """A target that no episode of the env can reach would never end a trial early."""
    target = experiment.stop.target
    metric = experiment.metric.removeprefix("evaluation/")
    if target is None:
        return
    if metric in RETURN_METRICS:
        low, high = env.episode_return_range()
        steps = "" if env.max_episode_steps is None else f" over at most {env.max_episode_steps} steps"
        bounds = f"with rewards in {list(env.reward_range or ())}{steps}"
        what = "returns"
    elif metric == "episode_len_mean":
        low, high = 1.0, float(env.max_episode_steps or math.inf)
        bounds = f"with a time limit of {env.max_episode_steps} steps"
        what = "lasts"
    else:
        return
    if experiment.mode == "max" and target > high:
        limit = f"at most {high:g}"
    elif experiment.mode == "min" and target < low:
        limit = f"at least {low:g}"
    else:
        return
    raise ConfigError(
        f"experiment key 'stop.target' is {target:g} for {experiment.metric!r}, but an episode of env "
        f"{env.label!r} {what} {limit} ({bounds}); trials could never reach it"
    )


def check_lines(check: ExperimentCheck, *, configs: bool = True) -> list[str]:
    """What `rlsweep check` prints (and, without the configs, `sweep` and `train` before
    they start)."""
    experiment, env = check.experiment, check.env
    limits = []
    if env.max_episode_steps is not None:
        limits.append(f"time limit {env.max_episode_steps} steps")
    if env.reward_threshold is not None:
        limits.append(f"gymnasium's reward_threshold {env.reward_threshold:g}")
    lines = [
        f"Env:          {env.label}" + (f" ({'; '.join(limits)})" if limits else ""),
        f"  observations: {_one_line(env.observation_space)}",
        f"  actions:      {_one_line(env.action_space)}",
        *getattr(env, "agent_lines", []),  # a multi-agent env's agents, spaces and policies
    ]
    if configs:
        searched = f"search space {experiment.space_name!r}" if experiment.is_search else "a fixed config"
        lines.append(f"Algorithm:    {experiment.trainable.__name__}, {searched}")
        lines.append(f"Model:        {_model_line(check)}")
        shown = check.sampled[:SHOWN_CONFIGS]
        if experiment.is_search:
            lines.append(f"Sampled configs ({len(shown)} of the narrowed space):")
        else:
            lines.append("Config (where it differs from the defaults):")
        for sample in shown:
            values = sample.searched if experiment.is_search else _non_defaults(sample.config)
            params = {k: v for k, v in trial_hyperparameters(values).items() if k != "env"}
            lines.append("  " + " ".join(f"{key}={_short(value)}" for key, value in params.items()))
    return lines + _checker_lines(env, full=configs)


def _checker_lines(env: EnvReport, *, full: bool) -> list[str]:
    """Each distinct finding once: in full for `rlsweep check`, its first sentence before a
    run; nothing before a run on gymnasium's own envs, whose findings a user cannot act on."""
    if env.source.is_gymnasium_own:
        return ["Env checker:  not run on gymnasium's own env"] if full else []
    if not env.warnings:
        return ["Env checker:  no warnings"]
    if full:
        return [f"Env checker:  {len(env.warnings)} warning(s), not fatal:"] + [
            f"  - {warning}" for warning in env.warnings
        ]
    shown = dict.fromkeys(warning.split(". ")[0].removesuffix(".") for warning in env.warnings)
    return [f"Env checker:  {len(shown)} warning(s), not fatal (`rlsweep check` shows them in full):"] + [
        f"  - {warning}" for warning in shown
    ]


def _model_line(check: ExperimentCheck) -> str:
    """The first sampled config's network in words, and which of its keys the search varies."""
    config = check.sampled[0].config
    parts = []
    if ObservationLayout.of(check.env.observation_space).image_shape is not None:
        parts.append(f"CNN {tuple(config.cnn_channels)}")
    parts.append(f"MLP {tuple(config.hidden_sizes)} {config.activation}")
    inputs = [
        name
        for used, name in ((config.lstm_use_prev_action, "action"), (config.lstm_use_prev_reward, "reward"))
        if used
    ]
    fed = f", fed the previous {' and '.join(inputs)}" if inputs else ""
    if config.use_lstm:
        parts.append(
            f"LSTM {config.lstm_cell_size} cells{fed}, trained on sequences of {config.max_seq_len} steps"
            + (f" after a burn-in of {config.burn_in_steps}" if hasattr(config, "burn_in_steps") else "")
        )
    if config.use_attention:
        parts.append(
            f"gated transformer (GTrXL) over the last {config.attention_memory} steps, "
            f"{config.attention_num_layers} layer(s) of {config.attention_dim} dims and "
            f"{config.attention_num_heads} heads{fed}, trained on sequences of {config.max_seq_len} steps"
        )
    searched = [
        key for key in MODEL_KEYS if len({str(getattr(sample.config, key)) for sample in check.sampled}) > 1
    ]
    return " -> ".join(parts) + (f" (searched: {', '.join(searched)})" if searched else "")


def _non_defaults(config: object) -> dict[str, object]:
    defaults = type(config)()
    return {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if getattr(config, f.name) != getattr(defaults, f.name)
    }


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
