"""SQS event source mappings, done locally the way Lambda does them.

One poller per ``@app.on_sqs_message`` handler long-polls the queue and gathers up to ``batch_size``
records within ``maximum_batching_window_in_seconds``; ``maximum_concurrency`` invokers run the real
handler with a Lambda-shaped event (the poller receives only while an invoker is free, so nothing
waits in memory), and apply Lambda's semantics for the batch: with partial batch responses
(ReportBatchItemFailures) delete every record not reported failed, without them delete the whole
batch once the handler returned; on an exception or a malformed response delete none, so the whole
batch comes back after the queue's visibility timeout.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
from botocore.exceptions import ConnectionError as EndpointDown
from botocore.exceptions import HTTPClientError
from chalice.local import LambdaContext

log = logging.getLogger("fila.local.sqs")
Handler = Callable[[dict[str, Any], Any], Any]
DEFAULT_CONCURRENCY = 4
ONE_RECEIVE_MAX = 10
PATIENCE_SECONDS = 60.0  # how long a starting mapping waits for SQS to answer
T = TypeVar("T")


class StartAbandoned(Exception):
    """A stop was asked for while a starting mapping waited for SQS."""


def patiently(call: Callable[[], T], stopping: Callable[[], bool] | None = None) -> T:
    """``call()``, tried again each second while SQS does not answer (the emulator restarting, or cut
    off for a moment): a mapping on AWS polls on through an outage, and a workers process that exited
    instead would be started again into the same outage until `fila up` gave up on it. A stop asked for
    meanwhile ends the wait at once (StartAbandoned)."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    while True:
        try:
            return call()
        except (EndpointDown, HTTPClientError) as err:
            if time.monotonic() >= deadline:
                raise
            log.warning("SQS does not answer yet (%s); trying again", type(err).__name__)
            for _ in range(10):
                if stopping is not None and stopping():
                    raise StartAbandoned from err
                time.sleep(0.1)


def failed_ids(response: Any, batch_ids: set[str]) -> set[str] | None:
    """Which records failed, per Lambda's rules; None means the whole batch failed."""
    if response is None or response == {}:
        return set()
    if not isinstance(response, dict):
        return None
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    ids = set()
    for item in failures:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(ident, str) or ident not in batch_ids:
            return None  # null, empty, wrong key or unknown id: the whole batch failed
        ids.add(ident)
    return ids


def lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {
                "stringValue": attr.get("StringValue"),
                "binaryValue": attr.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": attr["DataType"],
            }
            for name, attr in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class SqsEventSource:
    def __init__(self, name: str, handler: Handler, queue_url: str, *, batch_size: int = 10,
                 batching_window: float = 0, concurrency: int | None = None, wait_seconds: int = 5,
                 timeout_seconds: int = 30, yield_to: Callable[[], bool] | None = None,
                 partial_batch_responses: bool = True, stopping: Callable[[], bool] | None = None) -> None:
        self.name = name
        self.handler = handler
        self.queue_url = queue_url
        self.batch_size = batch_size
        self.batching_window = batching_window
        self.concurrency = concurrency or DEFAULT_CONCURRENCY
        self.wait_seconds = wait_seconds
        self.timeout_seconds = timeout_seconds
        self.yield_to = yield_to  # priority: one batch at a time while a higher lane has work
        self.paused: Callable[[], bool] | None = None  # an operator paused the lane: poll nothing
        self.partial = partial_batch_responses
        self.sqs = boto3.client("sqs")
        self.region = self.sqs.meta.region_name
        self.queue_arn = patiently(lambda: self.sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"], stopping)
        self.stopping = threading.Event()
        self.free = threading.Semaphore(self.concurrency)
        self.batches: queue.Queue[list[dict[str, Any]] | None] = queue.Queue()
        self.threads: list[threading.Thread] = []
        self.active = 0  # invocations running now
        self.held = 0  # batches received and not yet done (queued for an invoker, or running): while a
        # higher lane holds any, a lower one runs one batch at a time (fila.local.workers.LaneBusy)
        self.polled = threading.Event()  # its first pass is over: until then SQS may already hide the
        # messages its first receive took while ``held`` does not count them yet
        self._count_lock = threading.Lock()

    def start(self) -> None:
        self.threads = [threading.Thread(target=self._poll, name=f"{self.name}-poller", daemon=True)]
        self.threads += [threading.Thread(target=self._invoker, name=f"{self.name}-{i}", daemon=True)
                         for i in range(self.concurrency)]
        for thread in self.threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling; let invocations in progress finish (up to ``timeout``)."""
        self.stopping.set()
        for _ in range(self.concurrency):
            self.batches.put(None)
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _poll(self) -> None:
        while not self.stopping.is_set():
            self._poll_once()
            self.polled.set()

    def _poll_once(self) -> None:
        """Receive one batch for a free invoker, unless the lane is held back."""
        if not self.free.acquire(timeout=0.2):
            return
        try:
            if self._holding():
                self.free.release()
                self.stopping.wait(0.05)
                return
            messages = self.receive_batch()
        except Exception:
            self.free.release()
            log.exception("poller %s failed; retrying", self.name)
            self.stopping.wait(1.0)
            return
        if messages and not self.stopping.is_set():
            with self._count_lock:
                self.held += 1
            self.batches.put(messages)
            return
        self.free.release()
        if messages:  # received as we stop: give them back now, not after their visibility timeout
            self.release(messages)

    def _holding(self) -> bool:
        """Paused by an operator: poll nothing. Giving way to a higher lane that has work: one batch at a
        time, so this lane is slowed, never starved (a soak's default lane waited 90 s behind its high
        lane, on a machine a third idle)."""
        if self.paused is not None and self.paused():
            return True
        return self.held > 0 and self.yield_to is not None and self.yield_to()

    def _invoker(self) -> None:
        while (messages := self.batches.get()) is not None:
            try:
                self.invoke(messages)
            except Exception:
                log.exception("%s: deleting a batch failed; it comes back", self.name)
            finally:
                with self._count_lock:
                    self.held -= 1
                self.free.release()

    def receive_batch(self) -> list[dict[str, Any]]:
        messages = self._receive(self.wait_seconds, self.batch_size)
        if not messages or self.batching_window <= 0:
            return messages
        deadline = time.monotonic() + self.batching_window
        gathered = {m["MessageId"]: m for m in messages}
        while len(gathered) < self.batch_size and not self.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            wait = min(int(left + 0.999), self.wait_seconds)
            # one whose visibility ran out while the batch gathered comes again: keep it once, newest
            gathered.update((m["MessageId"], m) for m in self._receive(wait, self.batch_size - len(gathered)))
        return list(gathered.values())

    def _receive(self, wait: int, wanted: int) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(ONE_RECEIVE_MAX, wanted)),
            WaitTimeSeconds=wait,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    def release(self, messages: list[dict[str, Any]]) -> None:
        try:
            for start in range(0, len(messages), ONE_RECEIVE_MAX):
                self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for n, m in enumerate(messages[start:start + ONE_RECEIVE_MAX])])
        except Exception:
            log.exception("%s: could not give back %d messages; they return after their visibility timeout",
                          self.name, len(messages))

    def invoke(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [lambda_record(m, self.queue_arn, self.region) for m in messages]}
        context = LambdaContext(self.name, 512, max_runtime_ms=self.timeout_seconds * 1000)
        with self._count_lock:
            self.active += 1
        try:
            response = self.handler(event, context)
        except Exception:
            log.exception("%s raised: the whole batch of %d comes back", self.name, len(messages))
            return
        finally:
            with self._count_lock:
                self.active -= 1
        by_id = {m["MessageId"]: m for m in messages}
        failed = failed_ids(response, set(by_id)) if self.partial else set()
        if failed is None:
            log.warning("%s returned a malformed batch response: the whole batch comes back", self.name)
            return
        done = [m for i, m in by_id.items() if i not in failed]
        for start in range(0, len(done), ONE_RECEIVE_MAX):
            chunk = done[start:start + ONE_RECEIVE_MAX]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)],
            )
