"""Request parameters taken as the JSON they already are, where moto's parser would change nothing.

``BaseResponse.parse_parameters`` (moto.core.responses) walks the operation's input shape over every
request to turn JSON into parameters: 45 µs for a claim's UpdateItem, where ``json.loads`` takes 5. For
the SDKs' JSON requests the walk converts nothing but blobs, timestamps and numbers given as another
type, and drops nulls and unknown members; which of those happens depends only on the request's shape
(its members, each value's type), never on a string's content. So the parser runs once per operation
and shape, its parameters are compared with the plain JSON (types included), and while they are the
same, later requests of that shape take the JSON. Any other shape, content type or service keeps the
parser.
"""

from __future__ import annotations

import json
from typing import Any

_REMEMBERED = 1024  # (service, operation, shape): fila's requests have a few dozen
JSON_CONTENT = "application/x-amz-json-"


def apply() -> None:
    from moto.core.responses import BaseResponse

    stock = BaseResponse.parse_parameters
    verdicts: dict[tuple[Any, ...], bool] = {}

    def parse_parameters(self: Any, request: Any) -> None:
        if not (request.content_type or "").startswith(JSON_CONTENT):
            return stock(self, request)
        try:
            plain = json.loads(request.data) if request.data else {}
        except ValueError:
            return stock(self, request)
        if not isinstance(plain, dict):
            return stock(self, request)
        key = (self.boto3_service_name, self._get_action(), shape(plain))
        same = verdicts.get(key)
        if same:
            self.params = plain
            return None
        stock(self, request)
        if same is None and len(verdicts) < _REMEMBERED:
            verdicts[key] = identical(self.params, plain)  # the parser read its own copy
        return None

    BaseResponse.parse_parameters = parse_parameters


def shape(value: Any) -> Any:
    """What a parse can depend on: each dict's keys with their values' shapes, a list's distinct element
    shapes, a leaf's type (in the order the request has them: an SDK writes one request's members in one
    order, and another order is only another shape to judge)."""
    if isinstance(value, dict):
        return ("{", tuple((k, shape(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("[", tuple(dict.fromkeys(shape(v) for v in value)))
    return type(value)


def identical(a: Any, b: Any) -> bool:
    """Equal, with every value of the same type (1 is not 1.0, b"x" is not "x")."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(identical(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)
