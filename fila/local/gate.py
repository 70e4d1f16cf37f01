"""The emulator's gate: requests pass it shared; a snapshot closes it for the instant of a fork.

A snapshot must be one moment between requests, not the middle of one (an UpdateItem half applied,
a message taken from one queue and not yet put in its DLQ). Every request holds the gate shared while
moto handles it (``install``: from parsing the request to building its answer, not while waitress
reads or writes it); the snapshotter ``freeze``s it (waits for those inside, holds new ones back),
forks, and ``thaw``s it: requests wait for the fork, not for the pickling. A long poll does not hold
the gate while it waits, only while it takes messages (fila.local.fast_sqs). The freezer waits at
most ``timeout`` and then gives up that round, so nothing can wedge on it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


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


GATE = Gate()  # one per emulator process: moto's request handling and the SQS patches share it
# Operations that never change state (X-Amz-Target's suffix); ReceiveMessage is gated where it takes.
READS = frozenset({
    "GetItem", "BatchGetItem", "Query", "Scan", "DescribeTable", "ListTables", "DescribeTimeToLive",
    "GetQueueUrl", "GetQueueAttributes", "ListQueues", "ListQueueTags", "ListDeadLetterSourceQueues",
    "GetParameter", "GetParameters", "GetParametersByPath", "DescribeParameters",
})
UNGATED = frozenset({"ReceiveMessage"})


@contextmanager
def passing(op: str | None, method: str, gate: Gate = GATE) -> Iterator[None]:
    """One request through ``gate``, counted as a change unless it only reads (``op``: X-Amz-Target's
    suffix, None for the protocols without one)."""
    if op in UNGATED:
        yield
        return
    with gate.shared():
        if not (op in READS or (op is None and method in ("GET", "HEAD"))):
            gate.changed()
        yield


def install(gate: Gate = GATE) -> None:
    """Every moto request through the gate: moto.core.utils.convert_to_flask_response.__call__ is
    where each service's handler runs, between Flask's request and its response (fila.local.fast_dispatch
    passes it itself)."""
    from flask import request
    from moto.core.utils import convert_to_flask_response

    handle = convert_to_flask_response.__call__

    def gated(self: Any, args: Any = None, **kwargs: Any) -> Any:
        op = request.headers.get("X-Amz-Target", "").rpartition(".")[2] or None
        with passing(op, request.method, gate):
            return handle(self, args, **kwargs)

    convert_to_flask_response.__call__ = gated
