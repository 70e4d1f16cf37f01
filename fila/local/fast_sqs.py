"""SQS on moto whose cost does not grow with the queue's depth (standard queues; FIFO is moto's own).

moto keeps a queue's messages in one list and answers every call by scanning it: counting the
visible, in-flight and delayed messages, finding a receipt handle, receiving, deleting. At 10,000
messages each call costs tens of milliseconds. ``Messages`` (fila.local.sqs_index) replaces that
list with indexes. Every per-message operation is O(1) or O(batch · log depth), and the rules are
moto's, line for line (tested side by side against moto in tests/integration/test_fast_sqs.py):
delivery in arrival order, visibility,
receive counts, the move to the DLQ at maxReceiveCount, delays, long polling, receipt handles that
go stale. Deleted handles are forgotten after SQS's 12-hour limit (moto keeps them forever).

Each patch below names the moto function it replaces.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from fila.local.gate import GATE
from fila.local.sqs_index import HIDDEN, READY, Messages


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


STOCK: dict[str, Any] = {}  # moto's own functions, for FIFO queues


def apply() -> None:
    from moto.sqs.models import Queue, SQSBackend

    STOCK.update(messages=Queue.messages, delete=Queue.delete_message, wait=Queue.wait_for_messages,
                 receive=SQSBackend.receive_message, change=SQSBackend.change_message_visibility,
                 purge=SQSBackend.purge_queue)
    # Queue.approximate_number_of_messages*: each scanned every message of the queue.
    for position, suffix in enumerate(("", "_not_visible", "_delayed")):
        name = f"approximate_number_of_messages{suffix}"
        setattr(Queue, name, _counted(position, getattr(Queue, name)))
    # Queue.messages: a list comprehension over every message (now only the visible ones are touched).
    Queue.messages = property(_messages)
    # Queue.delete_message: scanned every message's every receipt handle, then rebuilt the list.
    Queue.delete_message = _delete_message
    # Queue.wait_for_messages: re-scanned the queue at each wake-up; now wakes when one is sent, or
    # when the next hidden message is due.
    Queue.wait_for_messages = _wait_for_messages
    # SQSBackend.receive_message: copied every pending message group and walked the whole queue.
    SQSBackend.receive_message = _receive_message
    # SQSBackend.change_message_visibility: scanned every message's every receipt handle.
    SQSBackend.change_message_visibility = _change_message_visibility
    # SQSBackend.purge_queue: replaced the index with a plain list.
    SQSBackend.purge_queue = _purge_queue
    # SQSBackend.get_queue_attributes: built every attribute of the queue once per name asked for.
    SQSBackend.get_queue_attributes = _get_queue_attributes


def _counted(position: int, original: Any) -> property:
    def count(self: Any) -> int:
        found = index(self)
        return original.fget(self) if found is None else found.counts()[position]
    return property(count)


def _messages(self: Any) -> list[Any]:
    found = index(self)
    if found is None:
        return list(STOCK["messages"].fget(self))
    with found.lock:
        return found.first_visible(len(found))


def _delete_message(self: Any, receipt_handle: str) -> None:
    from moto.sqs.exceptions import ReceiptHandleIsInvalid

    found = index(self)
    if found is None:
        STOCK["delete"](self, receipt_handle)
        return None
    if found.was_deleted(receipt_handle):
        return None  # deleting again is fine, as in moto
    with found.lock:
        message = found.by_handle(receipt_handle)
        if message is None:
            raise ReceiptHandleIsInvalid()
        self.pending_messages.discard(message)
        found.delete(message)
    return None


def _wait_for_messages(self: Any, timeout: int) -> None:
    found = index(self)
    if found is None:
        STOCK["wait"](self, timeout)
        return None
    deadline = time.monotonic() + timeout
    with self._messages_lock:
        while (left := deadline - time.monotonic()) > 0:
            shows = found.surface()
            if found.ready:
                return None
            until = left if shows is None else min(left, max(0.0, shows / 1000 - time.time()) + 0.001)
            self._messages_lock.wait(until)
    return None


def _receive_message(self: Any, queue_name: str, count: int, wait_seconds_timeout: int,
                     visibility_timeout: int, message_attribute_names: list[str] | None = None) -> list[Any]:
    from moto.sqs import models

    queue = self.get_queue(queue_name)
    found = index(queue)
    if found is None:
        return list(STOCK["receive"](self, queue_name, count, wait_seconds_timeout, visibility_timeout,
                                     message_attribute_names))
    polling_end = models.unix_time() + wait_seconds_timeout
    result: list[Any] = []
    while True:
        if result or (wait_seconds_timeout and models.unix_time() > polling_end):
            break
        with GATE.shared():  # taking changes the queue; waiting (below) does not
            if _take(self, queue, found, count, visibility_timeout, message_attribute_names or [], result):
                GATE.changed()
        if not result:
            if wait_seconds_timeout == 0:
                break
            queue.wait_for_messages(1)
    return result


def _take(backend: Any, queue: Any, found: Messages, count: int, visibility_timeout: int,
          names: list[str], result: list[Any]) -> bool:
    """moto's receive loop, over the first visible messages only."""
    from moto.sqs.models import _filter_message_attributes

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


def _change_message_visibility(self: Any, queue_name: str, receipt_handle: str,
                               visibility_timeout: int) -> None:
    from moto.sqs import models
    from moto.sqs.exceptions import InvalidParameterValue, ReceiptHandleIsInvalid

    queue = self.get_queue(queue_name)
    found = index(queue)
    if found is None:
        STOCK["change"](self, queue_name, receipt_handle, visibility_timeout)
        return None
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


def _purge_queue(self: Any, queue_name: str) -> None:
    STOCK["purge"](self, queue_name)
    queue = self.get_queue(queue_name)
    if not queue.fifo_queue:
        queue._messages = Messages()


def _get_queue_attributes(self: Any, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
    from moto.sqs import models

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
