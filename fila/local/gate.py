"""The emulator's gate: requests pass it shared; a snapshot closes it for the instant of a fork.

A snapshot must be one moment between requests, not the middle of one (an UpdateItem half applied,
a message taken from one queue and not yet put in its DLQ). Every request that may change state holds
the gate shared while moto handles it; the snapshotter ``freeze``s it (waits for those in flight,
holds new ones back), forks, and ``thaw``s it: requests wait for the fork, not for the pickling.
A long poll does not hold the gate while it waits, only while it takes messages (fila.local.fast_sqs).
The freezer waits at most ``timeout`` and then gives up that round, so nothing can wedge on it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Gate:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._inside = 0
        self._frozen = False
        self._freezing = False
        self._depth = threading.local()  # shared is re-entrant per thread (moto calls itself)
        self.changes = 0  # bumped by every request that may change state: "is a snapshot due?"

    @contextmanager
    def shared(self) -> Iterator[None]:
        depth = getattr(self._depth, "n", 0)
        if depth == 0:
            with self._cond:
                while self._frozen or self._freezing:
                    self._cond.wait()
                self._inside += 1
        self._depth.n = depth + 1
        try:
            yield
        finally:
            self._depth.n = depth
            if depth == 0:
                with self._cond:
                    self._inside -= 1
                    if self._inside == 0:
                        self._cond.notify_all()

    def changed(self) -> None:
        self.changes += 1

    def freeze(self, timeout: float) -> bool:
        """Hold every request back once those inside are out; False (and open) after ``timeout``."""
        with self._cond:
            if self._frozen or self._freezing:
                return False
            self._freezing = True
            done = self._cond.wait_for(lambda: self._inside == 0, timeout)
            self._freezing = False
            self._frozen = done
            self._cond.notify_all()
            return done

    def thaw(self) -> None:
        with self._cond:
            self._frozen = False
            self._cond.notify_all()


GATE = Gate()  # one per emulator process: the WSGI wrapper and the SQS patches share it
