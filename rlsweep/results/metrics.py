"""The numbers in a trial's Tune results, and the one that counts its env steps."""

from __future__ import annotations

from typing import Any

ENV_STEPS_KEY = "timesteps_total"
"""The result key counting a trial's env steps: the x axis of every tracker and plot, so
trials with different batch sizes line up."""


def numeric_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The finite numbers in a Tune result (bools and Tune's bookkeeping fields excluded)."""
    skip = {"done", "trial_id", "pid", "date", "hostname", "node_ip", "timestamp", "should_checkpoint"}
    metrics = {}
    for key, value in result.items():
        if key in skip or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if value == value and abs(value) != float("inf"):  # NaN and inf carry no curve
            metrics[key] = float(value)
    return metrics
