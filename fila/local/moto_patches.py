"""Patches for moto's server, applied in the emulator process only (never in chalicelib): speed, one
operation moto lacks, and the idempotency token it ignores.

Each one replaces (or adds) one moto function, keeps its behaviour, and says why in one line; they are
listed in the README so they can be offered upstream.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from typing import Any

from fila.local import fast_conditions, fast_dynamodb, fast_requests, fast_results, fast_sqs, fast_updates


def apply() -> None:
    from moto import backends
    from moto.core import responses
    from moto.moto_server import werkzeug_app

    # backends.list_of_moto_modules: listed moto's package folder on every request; it never changes.
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules

    # responses.method_names_from_class: inspect.getmembers of the response class on every request.
    responses.method_names_from_class = functools.cache(responses.method_names_from_class)

    # camelcase_to_underscores (as responses and sqs.models call it): a regex pass per call, made for each
    # request's action and, in SQS's Queue.attributes, for 14 names on every message sent (a twentieth of
    # the SQS process under the ack load). A function of its string alone: remembered.
    from moto.sqs import models as sqs_models

    names = functools.lru_cache(maxsize=4096)(responses.camelcase_to_underscores)
    responses.camelcase_to_underscores = sqs_models.camelcase_to_underscores = names

    # werkzeug_app.create_backend_app: set Flask's debug mode, which runs debug helpers per request.
    create = werkzeug_app.create_backend_app

    @functools.wraps(create)
    def create_backend_app(service: Any) -> Any:
        app = create(service)
        app.debug = False
        return app

    werkzeug_app.create_backend_app = create_backend_app
    _sqs_scans()
    _layer_version_by_arn()
    _transaction_tokens()
    fast_sqs.apply()
    fast_conditions.apply()  # first: fast_dynamodb's parse-once-per-request wraps it
    fast_dynamodb.apply()
    fast_updates.apply()  # last: it wraps the validator fast_dynamodb lightens, for what it cannot plan
    fast_results.apply()
    fast_requests.apply()


def _layer_version_by_arn() -> None:
    """LambdaResponse.get_layer_version_by_arn: missing (moto answered 500), and Chalice's automatic
    layer reads its layer by ARN on every deploy after the first."""
    from moto.awslambda.responses import LambdaResponse

    def get_layer_version_by_arn(self: Any) -> str:
        name, version = self.querystring["Arn"][0].split(":")[-2:]  # arn:aws:lambda:<r>:<a>:layer:<n>:<v>
        return json.dumps(self.backend.get_layer_version(name, version).get_layer_version())

    setattr(LambdaResponse, "get_layer_version_by_arn", get_layer_version_by_arn)  # noqa: B010


TOKEN_SECONDS = 600  # how long AWS keeps a ClientRequestToken


def _transaction_tokens() -> None:
    """DynamoHandler.transact_write_items: ignored ClientRequestToken, which botocore fills and sends
    again when it retries. AWS answers a repeat within ten minutes with success and changes nothing (or
    TransactionInProgressException while the first runs); moto applied it again, so a conditional
    transaction whose answer was lost failed on its own first write (the chaos soak lost six events so)."""
    from moto.core.responses import ActionResult
    from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException
    from moto.dynamodb.responses import DynamoHandler

    stock = DynamoHandler.transact_write_items
    done: dict[str, tuple[float, str]] = {}  # token -> (when it was done, its request)
    running: set[str] = set()
    lock = threading.Lock()

    def refuse(code: str, message: str) -> DynamodbException:
        return DynamodbException(ERROR_TYPE_PREFIX + code, message=message)

    def transact_write_items(self: Any) -> Any:
        token = self.body.get("ClientRequestToken")
        if not token:
            return stock(self)
        request, now = json.dumps(self.body["TransactItems"], sort_keys=True), time.monotonic()
        with lock:
            while done and now - next(iter(done.values()))[0] > TOKEN_SECONDS:  # oldest first: no walk
                del done[next(iter(done))]
            if token in running:
                raise refuse("TransactionInProgressException", "a transaction with this token is running")
            if token in done:
                if done[token][1] != request:
                    raise refuse("IdempotentParameterMismatchException",
                                 "the token was used with other parameters")
                return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})  # as stock's
            running.add(token)
        try:
            answer = stock(self)
        finally:
            with lock:
                running.discard(token)
        with lock:
            done[token] = (time.monotonic(), request)
        return answer

    DynamoHandler.transact_write_items = transact_write_items


def _sqs_scans() -> None:
    from moto.core.utils import unix_time
    from moto.sqs.models import Message, SQSBackend

    # Message.visible / .delayed: built two datetimes per message per check; epoch arithmetic is enough.
    setattr(Message, "visible", property(lambda self: time.time() * 1000 > self.visible_at))  # noqa: B010
    setattr(Message, "delayed", property(lambda self: time.time() * 1000 < self.delayed_until))  # noqa: B010

    # SQSBackend.is_message_valid_based_on_retention_period: computed every queue attribute (two
    # scans of the queue) per received message to read one of them.
    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > unix_time())

    setattr(SQSBackend, "is_message_valid_based_on_retention_period",  # noqa: B010
            is_message_valid_based_on_retention_period)
