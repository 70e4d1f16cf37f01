"""What an operator can do to jobs and queues (the admin API and the CLI call these).

Redrive prefers SQS's own ``StartMessageMoveTask``; where the endpoint lacks it (moto) it moves
messages itself, sending before deleting: an interruption can leave a message in both queues, never
in neither, and the job's claim makes the copy a no-op. Jobs that the consumer failed carry
``"redrive": true`` in their DLQ message, so the consumer starts their attempts over when the message
comes back, however it was moved.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import aws, queues, worker
from chalicelib.errors import Conflict, NotFound
from chalicelib.jobs import DELAYED, FAILED, Job, jobs, wake

MOVE_BATCH = 10


def retry(job_id: str) -> Job:
    """A failed job queued again, attempts starting over. 404 if unknown, 409 if not failed."""
    return _wake_if(job_id, FAILED, worker.restart)


def promote(job_id: str) -> Job:
    """A delayed job made due now. 404 if unknown, 409 if not delayed."""
    return _wake_if(job_id, DELAYED, jobs.promote)


def _wake_if(job_id: str, status: str, change: Callable[[str, float], bool]) -> Job:
    job = jobs.get(job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r}")
    if job.status != status or not change(job_id, time.time()):
        raise Conflict(f"job {job_id!r} is {job.status}, not {status}")
    wake(job)
    return jobs.get(job_id) or job


def redrive(queue: str, progress: Callable[[int], None] | None = None) -> int:
    """Move every message of ``queue``'s DLQ back to it; how many were moved (or are being moved)."""
    sqs = aws.client("sqs")
    dlq_url = queues.dlq_url(queue)
    waiting = int(sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
                  ["Attributes"]["ApproximateNumberOfMessages"])
    if waiting and _start_move_task(queue):
        return waiting
    moved = 0
    while True:
        batch = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=MOVE_BATCH, WaitTimeSeconds=0,
                                    VisibilityTimeout=60, MessageAttributeNames=["All"]).get("Messages", [])
        if not batch:
            return moved
        sqs.send_message_batch(QueueUrl=queues.queue_url(queue), Entries=[
            {"Id": str(i), "MessageBody": m["Body"],
             **({"MessageAttributes": m["MessageAttributes"]} if m.get("MessageAttributes") else {})}
            for i, m in enumerate(batch)])
        sqs.delete_message_batch(QueueUrl=dlq_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])
        moved += len(batch)
        if progress is not None:
            progress(moved)


def _start_move_task(queue: str) -> bool:
    sqs = aws.client("sqs")
    arns = [sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            for url in (queues.dlq_url(queue), queues.queue_url(queue))]
    try:
        sqs.start_message_move_task(SourceArn=arns[0], DestinationArn=arns[1])
    except (ClientError, BotoCoreError, NotImplementedError):
        return False  # moto: not implemented; move them ourselves
    return True
