"""SQS on moto whose cost does not grow with the queue's depth (standard queues; FIFO is moto's own).

moto keeps a queue's messages in one list and answers every call by scanning it: counting the
visible, in-flight and delayed messages, finding a receipt handle, receiving, deleting. At 10,000
messages each call costs tens of milliseconds. ``Messages`` replaces that list with indexes: an id
map in arrival order, a heap of the visible messages by arrival, a heap of the hidden ones (in
flight or delayed) by the time they show again, and a receipt handle map. Every per-message
operation is O(1) or O(batch · log depth), and the rules are moto's, line for line (tested side by
side against moto in tests/integration/test_fast_sqs.py): delivery in arrival order, visibility,
receive counts, the move to the DLQ at maxReceiveCount, delays, long polling, receipt handles that
go stale. Deleted handles are forgotten after SQS's 12-hour limit (moto keeps them forever).

Each patch below names the moto function it replaces.
"""

from __future__ import annotations

import copy
import heapq
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from fila.local.gate import GATE

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


def release_held() -> int:
    """After a restart: messages received by consumers that did not survive it are visible again at
    once, not after their visibility timeout; a retry's backoff (a visibility change) is kept."""
    from moto.sqs.models import sqs_backends

    released = 0
    for regions in sqs_backends.values():
        for backend in regions.values():
            for queue in backend.queues.values():
                found = index(queue)
                if found is None:
                    continue
                for message in found:
                    if getattr(message, "_fila_held", False) and message._fila_state == HIDDEN:
                        message.visible_at, message._fila_held = 0, False
                        queue.pending_messages.discard(message)
                        found.place(message)
                        released += 1
    return released


def index(queue: Any) -> Messages | None:
    """The queue's index (built from moto's list the first time); None for FIFO queues."""
    if queue.fifo_queue:
        return None
    if not isinstance(queue._messages, Messages):
        queue._messages = Messages(queue._messages)
    return queue._messages


def apply() -> None:
    from moto.sqs import models
    from moto.sqs.exceptions import InvalidParameterValue, ReceiptHandleIsInvalid
    from moto.sqs.models import Queue, SQSBackend, _filter_message_attributes

    def counted(position: int, original: Any) -> property:
        def count(self: Any) -> int:
            found = index(self)
            return original.fget(self) if found is None else found.counts()[position]
        return property(count)

    # Queue.approximate_number_of_messages*: each scanned every message of the queue.
    counters = ("", "_not_visible", "_delayed")
    for position, name in enumerate(f"approximate_number_of_messages{c}" for c in counters):
        setattr(Queue, name, counted(position, getattr(Queue, name)))

    # Queue.messages: a list comprehension over every message (now only the visible ones are touched).
    stock_messages = Queue.messages

    def messages(self: Any) -> list[Any]:
        found = index(self)
        if found is None:
            return list(stock_messages.fget(self))  # type: ignore[attr-defined]
        with found.lock:
            return found.first_visible(len(found))

    Queue.messages = property(messages)  # type: ignore[method-assign,assignment]

    # Queue.delete_message: scanned every message's every receipt handle, then rebuilt the list.
    stock_delete = Queue.delete_message

    def delete_message(self: Any, receipt_handle: str) -> None:
        found = index(self)
        if found is None:
            return stock_delete(self, receipt_handle)
        if found.was_deleted(receipt_handle):
            return None  # deleting again is fine, as in moto
        with found.lock:
            message = found.by_handle(receipt_handle)
            if message is None:
                raise ReceiptHandleIsInvalid()
            self.pending_messages.discard(message)
            found.delete(message)
        return None

    Queue.delete_message = delete_message  # type: ignore[method-assign]

    # Queue.wait_for_messages: re-scanned the queue at each wake-up; now wakes when one is sent, or when
    # the next hidden message is due.
    stock_wait = Queue.wait_for_messages

    def wait_for_messages(self: Any, timeout: int) -> None:
        found = index(self)
        if found is None:
            return stock_wait(self, timeout)
        deadline = time.monotonic() + timeout
        with self._messages_lock:
            while (left := deadline - time.monotonic()) > 0:
                shows = found.surface()
                if found.ready:
                    return None
                until = left if shows is None else min(left, max(0.0, shows / 1000 - time.time()) + 0.001)
                self._messages_lock.wait(until)
        return None

    Queue.wait_for_messages = wait_for_messages  # type: ignore[method-assign]

    # SQSBackend.receive_message: copied every pending message group and walked the whole queue.
    stock_receive = SQSBackend.receive_message

    def receive_message(self: Any, queue_name: str, count: int, wait_seconds_timeout: int,
                        visibility_timeout: int, message_attribute_names: list[str] | None = None
                        ) -> list[Any]:
        queue = self.get_queue(queue_name)
        found = index(queue)
        if found is None:
            return stock_receive(self, queue_name, count, wait_seconds_timeout, visibility_timeout,
                                 message_attribute_names)
        names = message_attribute_names or []
        polling_end = models.unix_time() + wait_seconds_timeout
        result: list[Any] = []
        while True:
            if result or (wait_seconds_timeout and models.unix_time() > polling_end):
                break
            with GATE.shared():  # taking changes the queue; waiting (below) does not
                taken = _take(self, queue, found, count, visibility_timeout, names, result)
                if taken:
                    GATE.changed()
            if not result:
                if wait_seconds_timeout == 0:
                    break
                queue.wait_for_messages(1)
        return result

    def _take(backend: Any, queue: Any, found: Messages, count: int, visibility_timeout: int,
              names: list[str], result: list[Any]) -> bool:
        """moto's receive loop, over the first visible messages only."""
        to_dlq: list[Any] = []
        seen: set[str] = set()  # a message shows once per receive, even with VisibilityTimeout 0
        with found.lock:
            while len(result) < count:
                batch = [m for m in found.first_visible(count - len(result)) if m.id not in seen]
                if not batch:
                    break
                for message in batch:
                    seen.add(message.id)
                    if message in queue.pending_messages:
                        queue.pending_messages.remove(message)  # visible again: its consumer timed out
                    if (queue.dead_letter_queue is not None and queue.redrive_policy
                            and message.approximate_receive_count >= queue.redrive_policy["maxReceiveCount"]):
                        found.remove(message)
                        to_dlq.append(message)
                        continue
                    queue.pending_messages.add(message)
                    message.mark_received(visibility_timeout=visibility_timeout)
                    found.received(message)
                    copied = copy.copy(message)  # moto deep-copies it to filter attributes on the copy
                    copied.message_attributes = dict(message.message_attributes)
                    _filter_message_attributes(copied, names)
                    if not backend.is_message_valid_based_on_retention_period(queue.name, message):
                        count = 0  # moto stops the receive here
                        break
                    result.append(copied)
        for message in to_dlq:
            queue.dead_letter_queue.add_message(message)
        return bool(result or to_dlq)

    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]

    # SQSBackend.change_message_visibility: scanned every message's every receipt handle.
    stock_change = SQSBackend.change_message_visibility

    def change_message_visibility(self: Any, queue_name: str, receipt_handle: str,
                                  visibility_timeout: int) -> None:
        queue = self.get_queue(queue_name)
        found = index(queue)
        if found is None:
            return stock_change(self, queue_name, receipt_handle, visibility_timeout)
        with found.lock:
            message = found.by_handle(receipt_handle)
            if message is None:
                raise ReceiptHandleIsInvalid
            given = models.unix_time_millis() + int(visibility_timeout) * 1000
            if given - message.sent_timestamp > 43200 * 1000:
                raise InvalidParameterValue(
                    f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid. Reason: Total "
                    "VisibilityTimeout for the message is beyond the limit [43200 seconds]")
            message.change_visibility(visibility_timeout)
            message._fila_held = False
            if message.visible and message in queue.pending_messages:
                queue.pending_messages.remove(message)
            found.place(message)
        if message._fila_state == READY:
            with queue._messages_lock:
                queue._messages_lock.notify_all()
        return None

    SQSBackend.change_message_visibility = change_message_visibility  # type: ignore[method-assign]

    # SQSBackend.purge_queue: replaced the list with a plain one.
    stock_purge = SQSBackend.purge_queue

    def purge_queue(self: Any, queue_name: str) -> None:
        stock_purge(self, queue_name)
        queue = self.get_queue(queue_name)
        if not queue.fifo_queue:
            queue._messages = Messages()

    SQSBackend.purge_queue = purge_queue  # type: ignore[method-assign]

    # SQSBackend.get_queue_attributes: built every attribute of the queue once per name asked for.
    def get_queue_attributes(self: Any, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
        queue = self.get_queue(queue_name)
        if not attribute_names:
            return {}
        valid = ["All", *queue.BASE_ATTRIBUTES, *queue.FIFO_ATTRIBUTES, *queue.KMS_ATTRIBUTES]
        invalid = next((name for name in attribute_names if name not in valid), None)
        if invalid or invalid == "":
            raise models.InvalidAttributeName(invalid)
        everything = queue.attributes
        if "All" in attribute_names:
            return dict(everything)
        return {name: everything[name] for name in attribute_names if everything.get(name) is not None}

    SQSBackend.get_queue_attributes = get_queue_attributes  # type: ignore[method-assign]
