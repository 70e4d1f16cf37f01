"""A standard queue's messages, indexed: what fila.local.fast_sqs puts in place of moto's list.

An id map in arrival order, a heap of the visible messages by arrival, a heap of the hidden ones (in
flight or delayed) by the time they show again, and a receipt handle map: every per-message operation
is O(1) or O(log depth). Message objects are moto's; their ``_fila_*`` attributes are the index's.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

READY, HIDDEN, DELAYED, GONE = "ready", "hidden", "delayed", "gone"
HANDLE_MEMORY_MS = 12 * 3600 * 1000  # SQS: no receipt handle outlives 12 hours


def _now_ms() -> float:
    return time.time() * 1000


class Messages:
    """A standard queue's messages, indexed. Iterates in arrival order, like the list it replaces.

    One lock per queue around every change: moto's server serves each request on its own thread.
    """

    def __init__(self, messages: list[Any] | None = None) -> None:
        self.lock = threading.RLock()
        self._all: dict[str, Any] = {}  # message id -> message, in arrival order
        self._ready: list[tuple[int, str, int]] = []  # (arrival, id, version): visible and due
        self._hidden: list[tuple[float, int, str, int]] = []  # (shows again at, arrival, id, version)
        self._handles: dict[str, str] = {}  # every receipt handle a live message has had -> its id
        self._deleted: dict[str, float] = {}  # handles of deleted messages -> when
        self._deleted_order: deque[tuple[float, str]] = deque()
        self._arrivals = 0
        self.ready = self.in_flight = self.delayed = 0
        for message in messages or ():
            self.append(message)

    # --- the list interface moto's other code uses -------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        with self.lock:
            return iter(list(self._all.values()))

    def __len__(self) -> int:
        return len(self._all)

    def append(self, message: Any) -> None:
        with self.lock:
            self._arrivals += 1
            message._fila_arrival, message._fila_state, message._fila_version = self._arrivals, GONE, 0
            self._all[message.id] = message
            for handle in message.all_receipt_handles:
                if handle:
                    self._handles[handle] = message.id
            self.place(message)

    def remove(self, message: Any) -> None:
        with self.lock:
            self._forget(message)
            del self._all[message.id]

    # --- indexes ----------------------------------------------------------------------------------
    def place(self, message: Any, now: float | None = None) -> None:
        """File a message under what it is now: visible and due, in flight, or delayed."""
        now = _now_ms() if now is None else now
        with self.lock:
            self._forget(message)
            message._fila_version += 1
            if now > message.visible_at and now >= message.delayed_until:  # moto's .visible, not .delayed
                message._fila_state = READY
                self.ready += 1
                heapq.heappush(self._ready, (message._fila_arrival, message.id, message._fila_version))
                return
            message._fila_state = DELAYED if now < message.delayed_until else HIDDEN
            if message._fila_state == DELAYED:
                self.delayed += 1
            else:
                self.in_flight += 1
            shows = max(message.visible_at, message.delayed_until)
            heapq.heappush(self._hidden, (shows, message._fila_arrival, message.id, message._fila_version))

    def _forget(self, message: Any) -> None:
        state = getattr(message, "_fila_state", GONE)
        if state == READY:
            self.ready -= 1
        elif state == HIDDEN:
            self.in_flight -= 1
        elif state == DELAYED:
            self.delayed -= 1
        message._fila_state = GONE  # its heap entries are skipped from now on

    def _live(self, message_id: str, version: int) -> Any | None:
        message = self._all.get(message_id)
        return message if message is not None and message._fila_version == version else None

    def surface(self, now: float | None = None) -> float | None:
        """Move every hidden message whose time has come to the visible ones; when the next one shows
        (epoch ms), if any."""
        now = _now_ms() if now is None else now
        with self.lock:
            while self._hidden:
                shows, _, message_id, version = self._hidden[0]
                message = self._live(message_id, version)
                if message is None or message._fila_state not in (HIDDEN, DELAYED):
                    heapq.heappop(self._hidden)
                    continue
                if now <= message.visible_at or now < message.delayed_until:
                    return float(shows)
                heapq.heappop(self._hidden)
                self.place(message, now)
            return None

    def first_visible(self, limit: int) -> list[Any]:
        """Up to ``limit`` visible, due messages in arrival order (a receive pays for what it takes,
        not for the queue). Call with ``lock`` held, and place or remove what you take."""
        self.surface()
        found: list[Any] = []
        entries: list[tuple[int, str, int]] = []
        while self._ready and len(found) < limit:
            entry = heapq.heappop(self._ready)
            message = self._live(entry[1], entry[2])
            if message is not None and message._fila_state == READY:
                found.append(message)
                entries.append(entry)
        for entry in entries:  # back until the caller files them anew (stale then, and skipped)
            heapq.heappush(self._ready, entry)
        return found

    def by_handle(self, receipt_handle: str) -> Any | None:
        message_id = self._handles.get(receipt_handle)
        return None if message_id is None else self._all.get(message_id)

    def received(self, message: Any) -> None:
        with self.lock:
            message._fila_held = True  # hidden by a receive, not by a visibility change
            if message.receipt_handle:
                self._handles[message.receipt_handle] = message.id
            self.place(message)

    def was_deleted(self, receipt_handle: str) -> bool:
        return receipt_handle in self._deleted

    def delete(self, message: Any) -> None:
        now = _now_ms()
        with self.lock:
            for handle in message.all_receipt_handles:
                if handle:
                    self._handles.pop(handle, None)
                    self._deleted[handle] = now
                    self._deleted_order.append((now, handle))
            while self._deleted_order and self._deleted_order[0][0] < now - HANDLE_MEMORY_MS:
                self._deleted.pop(self._deleted_order.popleft()[1], None)
            self.remove(message)

    def counts(self) -> tuple[int, int, int]:
        """(visible, not visible, delayed), as moto counts them."""
        with self.lock:
            self.surface()
            return self.ready, self.in_flight, self.delayed
