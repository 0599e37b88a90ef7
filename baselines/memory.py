"""Peak memory of a process tree, for the benchmarks (needs ``psutil``; imports nothing else, so
that measuring a process does not load JAX or torch into it)."""

from __future__ import annotations

import os
import threading
from typing import Any


class PeakRSSMonitor:
    """Peak of the summed RSS of process ``pid`` (default: this one) and all its descendants
    (e.g. Ray's GCS, raylet and workers), sampled every ``interval`` seconds in a daemon thread.
    Units: MiB. Use as a context manager; ``peak_mb`` holds the peak so far. Pages shared
    between processes are counted once per process."""

    def __init__(self, pid: int | None = None, interval: float = 0.2):
        import psutil

        self._psutil = psutil
        self._proc = psutil.Process(os.getpid() if pid is None else pid)
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)

    def sample(self) -> float:
        """Add up the tree's RSS now (0 once the root process has ended); updates ``peak_mb``."""
        psutil = self._psutil
        try:
            procs = [self._proc, *self._proc.children(recursive=True)]
        except psutil.Error:  # the measured process has ended
            return 0.0
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.Error:  # a child ended while we looked
                pass
        mb = total / 2**20
        self.peak_mb = max(self.peak_mb, mb)
        return mb

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> PeakRSSMonitor:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
