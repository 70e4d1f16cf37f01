"""AWS calls fila makes, by operation: per payment event end to end (the ack included), per customer
event, per no-op job; counted by botocore hooks on every client, the event source mapping's too.

    .venv/bin/python -m bench.calls [--events 50]

The app runs in-process against its own emulator (a fresh stage), its real handlers calling the local
fake CRM and Slack over HTTP; the lanes' consumers are the local event source mapping, with the lanes'
batch settings, so receives and deletes are amortised as on AWS. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from collections import Counter
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
DDB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


class Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class Calls:
    """AWS calls by service and operation, from botocore's own events: a transaction's items too, and a
    receive only when it took messages (a poller's empty polls are the mapping's, not any event's)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.items: Counter[str] = Counter()
        self.by_resource: Counter[str] = Counter()  # "UpdateItem jobs", "SendMessageBatch fila-…-high"
        self.empty_receives = 0
        self.lock = threading.Lock()
        self.quiet = threading.local()  # this thread's calls are the bench's own (polling), not fila's

    def watch(self, client: Any) -> None:
        service = client.meta.service_model.service_name
        client.meta.events.register("provide-client-params", self._params)
        client.meta.events.register("after-call", lambda model, parsed, context, **_: self._add(
            service, model, parsed, context.get("bench_resource")))

    def _params(self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        named = params.get("TableName") or params.get("QueueUrl") or params.get("Bucket")
        context["bench_resource"] = str(named).rsplit("/", 1)[-1].rsplit("-", 1)[-1] if named else "-"
        if model.name == "TransactWriteItems" and not getattr(self.quiet, "on", False):
            with self.lock:
                self.items["transaction items"] += len(params["TransactItems"])

    def _add(self, service: str, model: Any, parsed: dict[str, Any], resource: str | None) -> None:
        if getattr(self.quiet, "on", False):
            return
        with self.lock:
            if model.name == "ReceiveMessage" and not parsed.get("Messages"):
                self.empty_receives += 1
                return
            self.counts[f"{service}:{model.name}"] += 1
            self.by_resource[f"{model.name} {resource or '-'}"] += 1

    def take(self) -> tuple[Counter[str], Counter[str], Counter[str]]:
        with self.lock:
            taken, items, by_resource = self.counts, self.items, self.by_resource
            self.counts, self.items, self.by_resource = Counter(), Counter(), Counter()
        return taken, items, by_resource


def scenario(name: str, deliveries: list[tuple[str, dict[str, str], bytes]], calls: Calls, client: Any,
             system: Any, sources: dict[str, Any]) -> dict[str, Any]:
    """A burst: every delivery acknowledged first, then the consumers take the backlog (full batches, as
    Lambda's pollers take a burst)."""
    from chalicelib.events import status_of

    calls.take()
    keys = []
    for source, headers, body in deliveries:
        response = client.http.post(f"/webhooks/{source}", headers=headers, body=body)
        assert response.status_code == 200, response.body
        keys.append((source, json.loads(response.body)["event_id"]))
    for source in sources.values():
        source.start()
    deadline = time.monotonic() + 300
    calls.quiet.on = True
    while True:
        events = [system.events.get(s, e) for s, e in keys]
        if all(status_of(ev.status, system.jobs.of_event(ev.key)) == "completed" for ev in events if ev):
            break
        assert time.monotonic() < deadline, f"{name}: not completed"
        time.sleep(0.5)
    calls.quiet.on = False
    time.sleep(2)  # the last deletes of the mapping
    for source in sources.values():
        source.stop()
    counts, items, by_resource = calls.take()
    ours = dict(counts)
    n = len(deliveries)
    return {"scenario": name, "events": n, "calls_per_event": {k: round(v / n, 2) for k, v in sorted(ours.items())},
            "total_per_event": round(sum(ours.values()) / n, 2),
            "dynamodb_writes_per_event": round(sum(v for k, v in ours.items() if k.split(":")[1] in DDB_WRITES) / n, 2),
            "transaction_items_per_event": round(items["transaction items"] / n, 2),
            "by_resource_per_event": {k: round(v / n, 2) for k, v in sorted(by_resource.items())}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50)
    args = parser.parse_args()
    from chalice.test import Client

    from bench.jobs import run_scenario
    from chalicelib import aws, runtime
    from fila.local.defaults import stage_env
    from fila.local.emulator import aws_env, free_port, start_moto
    from fila.local.event_sources import SqsEventSource
    from fila.local.fakes import Fakes
    from fila.local.provision import provision
    from tests.signing import standard_delivery, stripe_delivery, stripe_event

    url = f"http://127.0.0.1:{free_port()}"
    moto = start_moto(url)
    os.environ.update({**aws_env(url), "FILA_STAGE": "local-calls", "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"})
    os.environ.update(stage_env())
    server = make_server("127.0.0.1", 0, Fakes(), handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    fakes = f"http://127.0.0.1:{server.server_port}/_fakes"
    os.environ.update({"CRM_API_URL": f"{fakes}/crm", "SLACK_WEBHOOK_URL": f"{fakes}/slack"})
    calls = Calls()
    import app as fila  # the stage is set: its consumers' queues are named

    try:
        provision()
        system = runtime.system()
        for service in ("dynamodb", "sqs", "s3", "ses"):
            calls.watch(aws.client(service))
        from chalicelib import queues
        from chalicelib.resources import lanes
        def sources() -> dict[str, SqsEventSource]:
            made = {lane.name: SqsEventSource(lane.function, fila.app.handler_map[lane.function],
                                              queues.queue_url(lane.name), batch_size=lane.batch_size,
                                              batching_window=lane.batching_window, concurrency=lane.concurrency,
                                              wait_seconds=1) for lane in lanes().values()}
            for source in made.values():
                calls.watch(source.sqs)
            return made

        with Client(fila.app, project_dir=tempfile.mkdtemp()) as client:  # no config: this stage stays
            payments = [("stripe", *stripe_delivery(stripe_event("payment_intent.succeeded")))
                        for _ in range(args.events)]
            customers = [("standard", *standard_delivery({"type": "customer.updated",
                                                          "data": {"email": f"c{i}@example.com", "name": "C"}}))
                         for i in range(args.events)]
            results = [scenario("payment event (4 jobs)", payments, calls, client, system, sources()),
                       scenario("customer event (1 job)", customers, calls, client, system, sources())]
        noop = run_scenario("noop-calls", args.events * 4, JobCalls(calls))
        results.append({"scenario": "no-op job", "calls_per_job": noop["calls_per_job"]})
        print(json.dumps(results, indent=1))
    finally:
        server.shutdown()
        if moto is not None:
            moto.terminate()


class JobCalls:
    """bench.jobs' counter interface over these calls."""

    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    def watch(self, client: Any) -> None:
        self.calls.watch(client)

    def take(self) -> Counter[str]:
        return self.calls.take()[0]


if __name__ == "__main__":
    main()
