"""``GET /health``: 200 once the API can reach its table and queues, 503 otherwise."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError
from chalice import Blueprint, Response

from chalicelib import aws, queues
from chalicelib.errors import json_response
from chalicelib.resources import lanes
from chalicelib.settings import StageNotSet, resource_name

blueprint = Blueprint(__name__)


@blueprint.route("/health", methods=["GET"])
def health() -> Response:
    try:
        aws.client("dynamodb").describe_table(TableName=resource_name("events"))
        for lane in lanes():
            url = queues.queue_url(lane)
            aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    except (BotoCoreError, ClientError, StageNotSet) as err:
        queues.forget()
        return json_response(503, {"status": "unavailable",
                                   "error": {"code": "unavailable", "message": type(err).__name__}})
    return json_response(200, {"status": "ok"})
