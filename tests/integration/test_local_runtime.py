"""Provisioning from infra/ and the parts of AWS the runtime provides that moto lacks (TTL)."""

from __future__ import annotations

import json
import time

import boto3

from chalicelib import resources
from chalicelib.settings import resource_name
from fila.local.provision import provision
from fila.local.ttl import reap


def test_provisioning_creates_everything_in_infra_and_is_idempotent(stage: str) -> None:
    provision()  # the fixture provisioned once already: a second start must not fail
    sqs, ddb, s3 = boto3.client("sqs"), boto3.client("dynamodb"), boto3.client("s3")
    for lane in resources.lanes().values():
        url = sqs.get_queue_url(QueueName=resource_name(lane.name))["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert int(attrs["VisibilityTimeout"]) == lane.visibility_timeout
        redrive = json.loads(attrs["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"].endswith(resource_name(f"{lane.name}-dlq"))
        assert int(redrive["maxReceiveCount"]) == lane.max_receive_count
    for table in resources.tables().values():
        found = ddb.describe_table(TableName=resource_name(table.name))["Table"]
        assert {i["IndexName"] for i in found.get("GlobalSecondaryIndexes", [])} == set(table.indexes)
        ttl = ddb.describe_time_to_live(TableName=resource_name(table.name))["TimeToLiveDescription"]
        assert ttl["AttributeName"] == table.ttl and ttl["TimeToLiveStatus"] == "ENABLED"
    for key in resources.declaration()["buckets"]:
        s3.head_bucket(Bucket=resource_name(key))


def test_the_ttl_reaper_deletes_expired_items_only(stage: str) -> None:
    ddb, table, now = boto3.client("dynamodb"), resource_name("jobs"), time.time()
    for job_id, expires in (("old", now - 10), ("fresh", now + 3600)):
        ddb.put_item(TableName=table, Item={"job_id": {"S": job_id}, "expires_at": {"N": str(int(expires))}})
    ddb.put_item(TableName=table, Item={"job_id": {"S": "forever"}})
    assert reap(table, "expires_at", now) == 1
    left = {i["job_id"]["S"] for i in ddb.scan(TableName=table)["Items"]}
    assert left == {"fresh", "forever"}
