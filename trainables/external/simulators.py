"""Simulators a trial launches: `per_worker` processes per vector env, each started from a
command template with its server's address, token and a seed; one that exits is restarted
with exponential backoff, and after `max_restarts` failures the fleet reports the last lines
it wrote to stderr. `stop` ends them all (SIGTERM, then SIGKILL); they also die with the
thread that started them (PR_SET_PDEATHSIG), so a killed worker leaves none behind."""

from __future__ import annotations

import collections
import ctypes
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass
class SimulatorConfig:
    command: str
    """A command line; {address}, {token}, {seed}, {worker}, {index} and {python} (this
    Python interpreter) are filled in."""
    per_worker: int = 1
    """Simulator processes per rollout worker and seed; num_envs_per_worker or more keep every slot busy."""
    max_restarts: int = 5
    """Restarts of one simulator before the trial fails."""
    backoff_s: float = 0.5
    """Delay before the first restart; doubles with each restart of the same simulator."""


class Simulator:
    def __init__(self, argv: list[str], name: str):
        self.argv, self.name = argv, name
        self.process: subprocess.Popen | None = None
        self.stderr: collections.deque[str] = collections.deque(maxlen=20)
        self.restarts = 0
        self.restart_at = 0.0

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        threading.Thread(target=self._read_stderr, args=(self.process,), daemon=True).start()

    def _read_stderr(self, process: subprocess.Popen) -> None:
        for line in process.stderr:
            self.stderr.append(line.rstrip())
            sys.stderr.write(f"[{self.name}] {line}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=3)
        except ProcessLookupError:
            pass


class SimulatorFleet:
    """The simulators of one vector env; `failure` is set once one failed for good."""

    def __init__(self, config: SimulatorConfig, address: str, token: str, seed: int, worker: int):
        self.config = config
        self.simulators = []
        for index in range(config.per_worker):
            values = {
                "address": address,
                "token": token,
                "seed": seed + index,
                "worker": worker,
                "index": index,
                "python": sys.executable,
            }
            try:
                command = config.command.format(**values)
            except (KeyError, IndexError) as error:
                raise ValueError(
                    f"simulator command {config.command!r} names {error}, which is none of "
                    "{address}, {token}, {seed}, {worker}, {index}, {python}"
                ) from None
            self.simulators.append(Simulator(shlex.split(command), f"simulator {worker}.{index}"))
        self.failure: str | None = None
        self._stopping = threading.Event()
        self._started = threading.Event()
        # One long-lived thread starts and restarts every simulator: their PR_SET_PDEATHSIG
        # ties them to this thread, which lives exactly as long as the fleet.
        self.thread = threading.Thread(target=self._watch, daemon=True, name="simulators")
        self.thread.start()
        self._started.wait(timeout=30)

    def _watch(self) -> None:
        try:
            for simulator in self.simulators:
                simulator.start()
        except OSError as error:
            self.failure = f"cannot start simulator {self.config.command!r}: {error}"
        self._started.set()
        while not self._stopping.wait(0.1):
            for simulator in self.simulators:
                self._look_after(simulator)
        for simulator in self.simulators:
            simulator.stop()

    def _look_after(self, simulator: Simulator) -> None:
        process = simulator.process
        if process is None or process.poll() is None or self.failure is not None:
            return
        now = time.monotonic()
        if not simulator.restart_at:
            if simulator.restarts >= self.config.max_restarts:
                time.sleep(0.2)  # let the reader thread take the last stderr lines
                tail = " | ".join(simulator.stderr) or "(no stderr output)"
                self.failure = (
                    f"{simulator.name} exited with code {process.returncode} after "
                    f"{simulator.restarts} restarts (max_restarts={self.config.max_restarts}); "
                    f"its last stderr lines: {tail}"
                )
                return
            delay = self.config.backoff_s * 2**simulator.restarts
            logger.warning(
                "%s exited with code %s; restarting in %.1f s", simulator.name, process.returncode, delay
            )
            simulator.restart_at = now + delay
        elif now >= simulator.restart_at:
            simulator.restarts += 1
            simulator.restart_at = 0.0
            simulator.start()

    def pids(self) -> list[int]:
        return [s.process.pid for s in self.simulators if s.process is not None]

    def stop(self) -> None:
        self._stopping.set()
        self.thread.join(timeout=15)


def _die_with_parent() -> None:
    """In the child: receive SIGKILL when the thread that started it dies (Linux)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
