"""Pausing a lane on AWS: its consumer's SQS event source mapping, disabled, and enabled again.

The mapping, not a gate in the consumer: a disabled mapping receives nothing, so a paused lane's
messages keep their receive counts (a consumer that handed every record back would walk them toward
maxReceiveCount and the DLQ) and a paused lane costs no invocations. The pause itself is recorded in
the lanes table (what the dashboard shows, and what the local pollers follow).
"""

from __future__ import annotations

from typing import Protocol

from botocore.exceptions import ClientError

from chalicelib import aws
from chalicelib.resources import lanes
from chalicelib.settings import resource_name


class Mappings(Protocol):
    def set_enabled(self, lane: str, enabled: bool) -> int:
        """Enable or disable the lane's mappings; how many there were."""


class LambdaMappings:
    def set_enabled(self, lane: str, enabled: bool) -> int:
        client = aws.client("lambda")
        try:
            found = client.list_event_source_mappings(FunctionName=resource_name(lanes()[lane].function))
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return 0  # no such function: nothing consumes the lane through Lambda
            raise
        mappings = found.get("EventSourceMappings", [])
        for mapping in mappings:
            client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=enabled)
        return len(mappings)
