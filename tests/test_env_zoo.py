"""The env zoo's smoke run: three env families from PyPI that rlsweep does not depend on
(the `zoo` extra, which `make test` installs) pass the pre-Ray check and train."""

import importlib.util
import math
import sys
from pathlib import Path

import pytest

SMOKE_FAMILIES = ["minigrid-empty", "popgym", "simplegrid"]


def _env_zoo():
    path = Path(__file__).parents[1] / "benchmarks" / "env_zoo.py"
    spec = importlib.util.spec_from_file_location("env_zoo", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["env_zoo"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.zoo
@pytest.mark.parametrize("name", SMOKE_FAMILIES)
def test_a_zoo_family_passes_the_check_and_trains_an_iteration(name):
    env_zoo = _env_zoo()
    family = next(family for family in env_zoo.FAMILIES if family.name == name)
    row = env_zoo.run_family(family, budget_scale=0.01)
    assert row.error == ""
    assert row.budget >= 1000
    assert math.isfinite(row.trained_return)
