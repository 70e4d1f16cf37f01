"""Provisioning from infra/, the parts of AWS the runtime provides that moto lacks (TTL), the local servers."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib import resources
from chalicelib.settings import resource_name
from fila.local.emulator import endpoints, free_port, start_moto, status
from fila.local.provision import provision
from fila.local.ttl import reap
from fila.local.workers import BACKGROUND_NICE, tables_to_reap
from tests.helpers import stop


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


def _ttl_table(ddb: Any, ttl: bool) -> str:
    table = "ttl-" + uuid.uuid4().hex[:10]
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}])
    if ttl:
        ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True,
                                                                          "AttributeName": "expires_at"})
    return table


def _expiring(ddb: Any, table: str, now: float) -> None:
    for job_id, expires in (("old", {"N": str(int(now - 10))}), ("fresh", {"N": str(int(now + 3600))})):
        ddb.put_item(TableName=table, Item={"job_id": {"S": job_id}, "expires_at": expires})
    ddb.put_item(TableName=table, Item={"job_id": {"S": "forever"}})


def test_the_ttl_reaper_deletes_expired_items_only(stage: str) -> None:
    """The client's reaper, for emulators that do not expire items (a table without TTL here, so the
    emulator's own expiry cannot race it)."""
    ddb, now = boto3.client("dynamodb"), time.time()
    table = _ttl_table(ddb, ttl=False)
    _expiring(ddb, table, now)
    assert reap(table, "expires_at", now) == 1
    left = {i["job_id"]["S"] for i in ddb.scan(TableName=table)["Items"]}
    assert left == {"fresh", "forever"}


def test_the_emulator_deletes_expired_items_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """fila's emulator runs DynamoDB TTL in its DynamoDB process, on tables with TTL enabled only, and
    says so, so the workers leave their client reaper idle."""
    monkeypatch.setenv("FILA_TTL_SECONDS", "0.2")
    url = f"http://127.0.0.1:{free_port()}"
    proc = start_moto(url)
    assert proc is not None
    try:
        assert status(url)["deletes_expired_items"] is True
        ddb = boto3.client("dynamodb", endpoint_url=endpoints(url)["dynamodb"])
        on, off, now = _ttl_table(ddb, ttl=True), _ttl_table(ddb, ttl=False), time.time()
        for table in (on, off):
            _expiring(ddb, table, now)
            ddb.put_item(TableName=table, Item={"job_id": {"S": "text"}, "expires_at": {"S": "1"}})  # not a number
        deadline = time.monotonic() + 10
        while "old" in (left := {i["job_id"]["S"] for i in ddb.scan(TableName=on)["Items"]}):
            assert time.monotonic() < deadline, "the expired item is still there"
            time.sleep(0.1)
        assert left == {"fresh", "forever", "text"}
        assert {i["job_id"]["S"] for i in ddb.scan(TableName=off)["Items"]} == {"old", "fresh", "forever", "text"}
    finally:
        stop(proc)
    assert status(url) == {}  # nothing there: what LocalStack or any other endpoint answers


def test_the_workers_reap_only_where_the_emulator_does_not(aws_endpoint: str, stock_moto: str) -> None:
    """Both reaping would double the scans; neither would keep every expired job record forever."""
    every = {resource_name(t.name): t.ttl for t in resources.tables().values() if t.ttl}
    assert every and "expires_at" in every.values()
    assert tables_to_reap(aws_endpoint) == {}  # fila's emulator: it deletes them itself
    assert tables_to_reap(stock_moto) == every  # moto's own server (LocalStack answers the same)
    assert tables_to_reap(f"http://127.0.0.1:{free_port()}") == every  # an emulator that does not answer


def _served_on_each(port: int, path: str, connections: int = 150) -> list[int]:
    """A request on each of ``connections`` keep-alive connections held open at once, as a client pool does."""
    opened = [http.client.HTTPConnection("127.0.0.1", port, timeout=5) for _ in range(connections)]
    try:
        statuses = []
        for conn in opened:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
        return statuses
    finally:
        for conn in opened:
            conn.close()


def test_the_local_servers_serve_every_open_connection(aws_endpoint: str) -> None:
    """waitress accepted 100 connections and left the rest in the kernel's queue, unserved until one of
    them closed: under load, keep-alive pools hold more than that, and acks waited seconds."""
    from chalice import Chalice

    from fila.local import gateway

    app = Chalice("doors")
    app.route("/ping")(lambda: {"ok": True})
    port = free_port()
    server = gateway.server(app, "local", "127.0.0.1", port)
    threading.Thread(target=server.run, daemon=True).start()
    try:
        assert set(_served_on_each(port, "/ping")) == {200}
    finally:
        server.close()
    assert set(_served_on_each(int(aws_endpoint.rsplit(":", 1)[1]), "/_fila/status")) == {200}


def _lowered(new_session: bool) -> tuple[int, str | None]:
    """A child that calls yield_cpu: its nice, and its session group's line (None without autogroups, or
    in the root group, whose line is empty: a container's first session)."""
    probe = ("import os; from pathlib import Path; from fila.local.workers import yield_cpu; yield_cpu(); "
             "g = Path('/proc/self/autogroup'); "
             "print(os.nice(0)); print(g.read_text().strip() if g.exists() else '')")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         start_new_session=new_session).stdout.splitlines()
    return int(out[0]), out[1] or None if len(out) > 1 else None


def test_the_consumers_lower_their_session_group_only_when_it_is_their_own() -> None:
    group = Path("/proc/self/autogroup")
    before = (group.read_text().strip() if group.exists() else "") or None
    own_nice, own_group = _lowered(new_session=True)
    shared_nice, shared_group = _lowered(new_session=False)
    assert own_nice >= BACKGROUND_NICE and shared_nice >= BACKGROUND_NICE
    if own_group is not None:  # Linux gave the new session a group: its nice ends the group's line
        assert own_group.split()[-1] == str(BACKGROUND_NICE)
    assert shared_group == before == ((group.read_text().strip() if group.exists() else "") or None)
