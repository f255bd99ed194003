"""A background thread that sends MLflow calls in order, metrics coalesced into
`log_batch` calls: Tune processes results in its driver loop and only then asks a trial
for its next iteration, so a slow tracking store must not be waited on there."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlflow.entities import Metric

from rlsweep.tracking.mlflow_store import MLflowStore

MAX_BATCH = 1000  # MLflow's limit on metrics per log_batch call


@dataclass(frozen=True)
class LogMetrics:
    run_id: str
    metrics: list[Metric]


@dataclass(frozen=True)
class Call:
    action: Callable[[], Any]
    what: str


@dataclass(frozen=True)
class Stop:
    pass


Work = LogMetrics | Call | Stop


class BatchWriter:
    """A daemon thread sending queued metrics with log_batch and running queued calls in
    order, so a run's metrics always land before its final status."""

    def __init__(self, store: MLflowStore):
        self.store = store
        self.queue: queue.Queue[Work] = queue.Queue()
        self.thread = threading.Thread(target=self._work, name="rlsweep-mlflow", daemon=True)
        self.thread.start()

    def put(self, work: Work) -> None:
        self.queue.put(work)

    def close(self) -> None:
        self.queue.put(Stop())
        self.thread.join()

    def _work(self) -> None:
        while True:
            work: Work | None = self.queue.get()
            # Coalesce the metrics waiting in line (up to the next call) into few batches.
            pending: dict[str, list[Metric]] = {}
            while isinstance(work, LogMetrics):
                pending.setdefault(work.run_id, []).extend(work.metrics)
                try:
                    work = self.queue.get_nowait()
                except queue.Empty:
                    work = None
            for run_id, metrics in pending.items():
                for start in range(0, len(metrics), MAX_BATCH):
                    chunk = metrics[start : start + MAX_BATCH]
                    self.store.call(
                        lambda r=run_id, c=chunk: self.store.client.log_batch(r, metrics=c), "logging metrics"
                    )
            if isinstance(work, Stop):
                return
            if isinstance(work, Call):
                self.store.call(work.action, work.what)
