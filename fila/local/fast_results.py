"""DynamoDB's single-item answers written as the JSON they already are.

``DynamoResult.execute_result`` (moto.dynamodb.responses): every answer goes through moto's generic
serializer, which walks the operation's output shape and looks each member up under its possible
names: 66 µs for an UpdateItem's answer with nothing but its consumed capacity, 92 µs with a job's
item, where ``json.dumps`` takes 3 and 8. The answers of PutItem, UpdateItem, DeleteItem and GetItem
are already DynamoDB's JSON (an item, the consumed capacity); such an answer, whose every attribute value
is plain JSON (nothing binary), is written directly, with the serializer's status and content type.
Anything else goes to the serializer.
"""

from __future__ import annotations

import json
from typing import Any

from fila.local.fast_dynamodb import plain

SINGLE_ITEM = {"PutItem", "UpdateItem", "DeleteItem", "GetItem"}
ITEMS = ("Attributes", "Item")


def apply() -> None:
    from moto import settings
    from moto.dynamodb.responses import DynamoResult

    stock = DynamoResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        operation = context.operation_model
        if operation.name not in SINGLE_ITEM or settings.PRETTIFY_RESPONSES or not _as_they_are(self.result):
            return stock(self, context)
        version = operation.service_model.metadata["jsonVersion"]
        return 200, {"Content-Type": f"application/x-amz-json-{version}"}, json.dumps(self.result)

    DynamoResult.execute_result = execute_result


def _as_they_are(result: Any) -> bool:
    """An item and its consumed capacity, in the JSON DynamoDB answers with."""
    if not isinstance(result, dict) or not set(result) <= {*ITEMS, "ConsumedCapacity"}:
        return False
    capacity = result.get("ConsumedCapacity", {})
    if not (isinstance(capacity, dict) and set(capacity) <= {"TableName", "CapacityUnits"}
            and isinstance(capacity.get("TableName", ""), str)
            and type(capacity.get("CapacityUnits", 0)) in (int, float)):
        return False
    return all(isinstance(result.get(name, {}), dict) and all(plain(v) for v in result.get(name, {}).values())
               for name in ITEMS)
