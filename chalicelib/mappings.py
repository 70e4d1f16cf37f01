"""Pausing a lane on AWS: its consumer's SQS event source mapping, disabled, and enabled again.

The mapping, not a gate in the consumer: a disabled mapping receives nothing, so a paused lane's
messages keep their receive counts (a consumer that handed every record back would walk them toward
maxReceiveCount and the DLQ) and a paused lane costs no invocations. The pause itself is recorded in
the lanes table (what the dashboard shows, and what the local pollers follow).
"""

from __future__ import annotations

from typing import Protocol

from chalicelib import aws
from chalicelib.queues import queue_url


class Mappings(Protocol):
    def set_enabled(self, lane: str, enabled: bool) -> int:
        """Enable or disable the lane's mappings; how many there were."""


class LambdaMappings:
    def set_enabled(self, lane: str, enabled: bool) -> int:
        """Every mapping that reads the lane's queue (found by the queue, which names the lane exactly)."""
        client = aws.client("lambda")
        found = client.list_event_source_mappings(EventSourceArn=queue_arn(lane))["EventSourceMappings"]
        for mapping in found:
            client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=enabled)
        return len(found)


def queue_arn(lane: str) -> str:  # asked only on a pause or a resume: not worth a cache
    answer = aws.client("sqs").get_queue_attributes(QueueUrl=queue_url(lane), AttributeNames=["QueueArn"])
    return str(answer["Attributes"]["QueueArn"])
