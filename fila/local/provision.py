"""Create every resource of the declaration on the emulator (idempotent: safe on every start)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import boto3

from chalicelib import resources
from chalicelib.settings import resource_name
from chalicelib.targets import sender
from fila.infra import dlq_attributes, queue_attributes, table_definition


def use_stage(stage: str) -> None:
    """Point this process's chalicelib at ``stage``'s resources, forgetting what it cached for the last
    one (settings, queue URLs, secrets, the job system, clients): tests and benches switch stages."""
    from chalicelib import aws, credentials, queues, runtime
    from chalicelib.settings import settings

    os.environ["FILA_STAGE"] = stage
    settings.cache_clear()
    queues.forget()
    credentials.forget()
    runtime.forget()
    aws.reset()


class Interrupted(Exception):
    """A stop was asked for while provisioning: the rest is left for the next start."""


def provision(stopping: Callable[[], bool] = lambda: False) -> dict[str, str]:
    """Create queues (each with its DLQ), tables (with indexes and TTL) and buckets; {lane: queue url}.
    ``stopping`` is asked between resources (a loaded machine can take seconds over them all)."""
    urls = {}
    for lane in resources.lanes().values():
        urls[lane.name] = _queue(lane)
        if stopping():
            raise Interrupted
    for table in resources.tables().values():
        _table(table)
        if stopping():
            raise Interrupted
    for key in resources.declaration()["buckets"]:
        _client("s3").create_bucket(Bucket=resource_name(key))
    _client("ses").verify_email_identity(EmailAddress=sender())  # SES sends only from verified
    return urls


_CLIENTS: dict[tuple[str | None, ...], Any] = {}


def _client(service: str) -> Any:
    """One client per service and endpoint, kept across stages: a client takes longer to make than a
    stage's resources, and the tests provision a stage per test (chalicelib.aws's clients are
    forgotten at every use_stage)."""
    key = (service, os.environ.get("AWS_ENDPOINT_URL"), os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}"),
           os.environ.get("AWS_DEFAULT_REGION"))
    if key not in _CLIENTS:
        _CLIENTS[key] = boto3.client(service)
    return _CLIENTS[key]


def _queue(lane: resources.Lane) -> str:
    sqs = _client("sqs")
    dlq_url = sqs.create_queue(QueueName=resource_name(f"{lane.name}-dlq"),
                               Attributes={k: str(v) for k, v in dlq_attributes(lane).items()})["QueueUrl"]
    dlq = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    dlq_arn = dlq["Attributes"]["QueueArn"]
    attributes = {k: json.dumps(v) if isinstance(v, dict) else str(v)
                  for k, v in queue_attributes(lane, dlq_arn).items()}
    url = str(sqs.create_queue(QueueName=resource_name(lane.name))["QueueUrl"])
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url


def _table(table: resources.Table) -> None:
    ddb = _client("dynamodb")
    name = resource_name(table.name)
    try:
        ddb.create_table(**table_definition(table, name))
    except ddb.exceptions.ResourceInUseException:
        return  # provisioned by an earlier start
    ddb.get_waiter("table_exists").wait(TableName=name)
    if table.ttl:
        ddb.update_time_to_live(TableName=name,
                                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl})
