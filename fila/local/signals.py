"""Stopping on SIGINT/SIGTERM, with a signal handler that cannot deadlock.

A Python signal handler runs between two bytecodes of the main thread, wherever it is: a handler that
takes a lock (``threading.Event.set`` does) deadlocks when a second signal arrives while the first
handler holds it, and a group SIGTERM sent through ``make`` delivers two. So the handler here only
records the signal number in a plain attribute; CPython's C-level handler has already written it to a
wakeup fd (``signal.set_wakeup_fd``), which is what ``wait`` selects on.

    stop = StopSignals()          # first thing in main(), before any slow import
    while not stop.wait(0.5):     # main thread only
        ...
"""

from __future__ import annotations

import os
import select
import signal
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """SIGINT and SIGTERM ask for a stop; the first one received is kept in ``signal``."""

    def __init__(self, signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> None:
        self.signal: int | None = None
        self._read, write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(write, False)
        signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        for sig in signals:
            signal.signal(sig, self._record)

    def _record(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is None:  # a plain attribute: no lock, no I/O
            self.signal = signum

    @property
    def requested(self) -> bool:
        return self.signal is not None or self._drain()

    def wait(self, timeout: float | None = None) -> bool:
        """Block the main thread until a stop is asked for or ``timeout`` passes; True if asked."""
        if self.requested:
            return True
        select.select([self._read], [], [], timeout)
        return self.requested

    def _drain(self) -> bool:
        """What the C-level handler wrote: signal numbers, one byte each."""
        try:
            data = os.read(self._read, 512)
        except BlockingIOError:
            return False
        if data and self.signal is None:
            self.signal = data[0]
        return bool(data)
