"""``chalice`` against the embedded emulator: Chalice's own CLI, with the one request moto cannot take
presented in a shape it can.

moto's ``ImportRestApi``/``PutRestApi`` read ``info.description`` and accept only OpenAPI 3, while
Chalice sends Swagger 2.0 without a description (moto answers 500). A botocore hook on Chalice's
session rewrites just that body's header; the paths, integrations and authorizers are sent as they
are. Used by ``fila.release`` only when the endpoint is on this machine; nothing here ships.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def present_as_openapi3(params: dict[str, Any], **_: Any) -> None:
    body = params.get("body")
    if not body:
        return
    document = json.loads(body)
    if "swagger" not in document:
        return
    document.pop("swagger")
    document["openapi"] = "3.0.1"
    document.setdefault("info", {}).setdefault("description", document["info"].get("title", "fila"))
    params["body"] = json.dumps(document).encode()


def main(argv: list[str]) -> int:
    from chalice.cli import factory
    from chalice.cli import main as chalice

    stock = factory.create_botocore_session

    def session(*args: Any, **kwargs: Any) -> Any:
        created = stock(*args, **kwargs)
        for operation in ("ImportRestApi", "PutRestApi"):
            created.register(f"before-parameter-build.apigateway.{operation}", present_as_openapi3)
        return created

    factory.create_botocore_session = session
    sys.argv = ["chalice", *argv]
    return int(chalice() or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
