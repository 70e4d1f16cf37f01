"""The peer: what a Python team would write on AWS without fila. A Chalice SQS consumer with Powertools'
``BatchProcessor`` (partial batch responses) and ``idempotent_function`` (DynamoDB persistence: one
conditional put when a record starts, one update when it completes), doing the same handler work.

It has no job records, no reasons in a DLQ (SQS's own redrive after maxReceiveCount), no backoff
but the queue's visibility timeout: what fila adds is measured against what this costs.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from chalice import Chalice

TABLE = os.environ.get("PEER_TABLE", "peer-idempotency")
QUEUE = os.environ.get("PEER_QUEUE", "peer-jobs")
WORK_SECONDS = float(os.environ.get("PEER_WORK_SECONDS", "0"))

app = Chalice(app_name="peer")
processor = BatchProcessor(event_type=EventType.SQS)
persistence = DynamoDBPersistenceLayer(table_name=TABLE)
config = IdempotencyConfig(event_key_jmespath="job_id", expires_after_seconds=3600)
done: list[str] = []  # what ran, for the bench to count (once per job: idempotency holds)


@idempotent_function(data_keyword_argument="job", persistence_store=persistence, config=config)
def work(job: dict[str, Any]) -> dict[str, Any]:
    if WORK_SECONDS:
        time.sleep(WORK_SECONDS)
    done.append(job["job_id"])
    return {"ok": True}


def record_handler(record: SQSRecord) -> Any:
    return work(job=json.loads(record.body))


@app.on_sqs_message(queue=QUEUE, batch_size=10)
def consume(event: Any) -> Any:
    config.register_lambda_context(getattr(event, "context", None))  # type: ignore[arg-type]
    return process_partial_response(event=event.to_dict(), record_handler=record_handler, processor=processor,
                                    context=getattr(event, "context", None))
