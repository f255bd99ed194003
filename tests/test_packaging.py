"""The package as a user installs it: a wheel holding one top-level package, `rlsweep`, that
imports and runs from any folder, its shipped experiments inside it."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from the files git tracks, as a release would be."""
    source = tmp_path_factory.mktemp("source")
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, tracked):
        target = source / name.decode()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((REPO / name.decode()).read_bytes())
    wheelhouse = tmp_path_factory.mktemp("wheelhouse")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(wheelhouse), str(source)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (built,) = wheelhouse.glob("rlsweep-*.whl")
    return built


def test_the_wheel_puts_only_rlsweep_at_the_top_of_site_packages(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names}
    assert {name for name in top_level if not name.endswith(".dist-info")} == {"rlsweep"}
    assert "rlsweep/experiments/classic/cartpole_ppo.yaml" in names


def test_the_installed_wheel_imports_and_runs_beside_a_users_own_experiments_package(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    project = tmp_path / "project"  # a user's project with its own `experiments` package
    (project / "experiments").mkdir(parents=True)
    (project / "experiments" / "__init__.py").write_text("MINE = True\n")
    probe = (
        "import experiments, rlsweep, rlsweep.cli\n"
        "from rlsweep import DQN, PPO, SAC, load_policy\n"
        "assert experiments.MINE\n"
        "print(rlsweep.__file__)\n"
        "print(rlsweep.cli.__file__)\n"
    )
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    imported = subprocess.run(
        [sys.executable, "-c", probe], cwd=project, env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert all(Path(path).is_relative_to(site) for path in imported)
    listing = subprocess.run(
        [sys.executable, "-m", "rlsweep", "list"], cwd=project, env=env, capture_output=True, text=True
    )
    assert listing.returncode == 0, listing.stderr
    assert f"Experiments ({site / 'rlsweep' / 'experiments'})" in listing.stdout
    assert "cartpole_ppo" in listing.stdout
