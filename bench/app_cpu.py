"""The app's own CPU per webhook, AWS calls excluded (what Lambda bills beyond the network waits).

Calls the Chalice app the way Lambda does (API Gateway proxy event, context) with the job system's
store and queues in memory (fila.memory), so only fila's and Chalice's own work is timed:
routing, signature check, JSON decode, envelope, logging, response. Prints JSON.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # app.py lives at the root
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("FILA_STAGE", "local")


def main(n: int = 5000) -> dict[str, Any]:
    from fila.local.defaults import stage_env

    os.environ.update(stage_env())
    import app as fila
    from chalicelib import runtime
    from chalicelib.handlers import HANDLERS
    from chalicelib.system import JobSystem
    from fila.memory import MemoryQueues, MemoryStore
    from fila.samples import signed_sample

    system = JobSystem(HANDLERS, store=MemoryStore(), queues=MemoryQueues())
    runtime.use(system)
    requests = []
    for i in range(n):
        _, headers, body = signed_sample("stripe", "payment_intent.succeeded", event_id=f"evt_cpu_{i}")
        requests.append({
            "resource": "/webhooks/{source}", "path": "/webhooks/stripe", "httpMethod": "POST",
            "headers": {k.lower(): v for k, v in headers.items()}, "multiValueHeaders": {},
            "queryStringParameters": None, "multiValueQueryStringParameters": None,
            "pathParameters": {"source": "stripe"}, "stageVariables": None,
            "requestContext": {"resourcePath": "/webhooks/{source}", "httpMethod": "POST",
                               "path": "/api/webhooks/stripe", "identity": {"sourceIp": "127.0.0.1"}},
            "body": body.decode(), "isBase64Encoded": False,
        })
    sink = open(os.devnull, "w")  # noqa: SIM115 - logs are formatted and written, like on Lambda
    for handler in logging.getLogger("fila").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)
    real_stdout, sys.stdout = sys.stdout, sink  # EMF metric lines are printed, as on Lambda
    try:
        for event in requests[:500]:  # warm-up
            fila.app(event, None)
        samples = []
        for event in requests[500:]:
            started = time.process_time()
            response = fila.app(event, None)
            samples.append((time.process_time() - started) * 1000)
            assert response["statusCode"] == 200, response
    finally:
        sys.stdout = real_stdout
        sink.close()
    samples.sort()
    return {"requests": len(samples), "cpu_ms_mean": round(statistics.fmean(samples), 4),
            "cpu_ms_p50": round(samples[len(samples) // 2], 4),
            "cpu_ms_p99": round(samples[int(len(samples) * 0.99)], 4)}


if __name__ == "__main__":
    print(json.dumps(main()))
