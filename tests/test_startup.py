"""Commands that answer without training import neither torch nor Ray, which cost seconds
to import on a small machine; each runs in a fresh interpreter, as a user starts it."""

import json
import subprocess
import sys

import pytest

RUN = """
import json, sys
import rlsweep.cli.result_commands as commands
commands._serve = lambda command: 0  # `rlsweep ui` would serve MLflow's UI until stopped
from rlsweep.cli import main
try:
    main({arguments!r})
except SystemExit:
    pass
print(json.dumps(sorted({{"torch", "ray"}} & {{name.split(".")[0] for name in sys.modules}})))
"""


@pytest.mark.parametrize(
    "arguments",
    [["--help"], ["sweep", "--help"], ["ui", "--results-dir", "{tmp}"]],
    ids=lambda a: " ".join(a),
)
def test_a_command_that_trains_nothing_imports_neither_torch_nor_ray(arguments, tmp_path):
    (tmp_path / "mlflow.db").write_text("")
    arguments = [argument.format(tmp=tmp_path) for argument in arguments]
    done = subprocess.run(
        [sys.executable, "-c", RUN.format(arguments=arguments)], capture_output=True, text=True, timeout=120
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [], done.stderr[-1000:]
