"""Chaos soak: N signed deliveries through a real `fila up` while things break, then proof that
nothing was lost and no effect happened twice.

    .venv/bin/python -m bench.soak [--events 2000] [--concurrency 32] [--seed 1] [--no-baseline]

Deliveries: the four sources (payments, customers, and events fila ignores), each with its own
customer email; 10 % sent twice, half of those at the same moment. Meanwhile:
- the fake CRM fails 5 % of calls transiently (503, 429, or a timeout after it applied the call)
  and rejects 1 % of the contacts (422) on every call;
- the consumers are SIGKILLed and restarted several times (`fila up` starts new ones);
- the SQS endpoint is unreachable for a few seconds during ingest (the API's sends fail; the
  recovery sweep enqueues what was stored).
The queues' visibility timeout is set to 31 s (above the consumers' 30 s Lambda timeout, as AWS
requires) so what a killed consumer held comes back in the soak's lifetime rather than after 180 s,
and ``SWEEP_AFTER_SECONDS`` to 15 (the sweep itself keeps its real once-a-minute cadence).

Checks, after the stack drained: accepted events = events in a final state, with the status
expected of each; each effect exactly once per (event, job): Idempotency-Keys applied at the fake
CRM, Slack messages, PDFs in S3, emails in SES; the DLQs hold exactly the rejected contacts' CRM
jobs, each with its reason. Then the fake recovers, each queue's DLQ is redriven once, and every
event must complete with the same once-only effects. Slack and SES take no idempotency key: a
worker killed between such a send and its completion record repeats that send, so a second
message counts as a violation unless the job's record shows that attempt was cut short (an
attempt claimed and never settled); so does a job twice in a DLQ (a worker killed between its DLQ
send and the job's ``failed`` record). CPU per role of the stack's processes (emulator, API,
consumers) is read from /proc for ingest and drain, to say what bounded them. The soak settled when
its last job did: its ``finished_at``, from the first post (the drain's poll sees it a poll and two
scans later). Results:
bench/results/soak-<time>.json and a Markdown summary.
Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.chaos import CpuMeter, Outage, cpu_share, kill_workers  # noqa: E402
from bench.record import rate_limits  # noqa: E402
from chalicelib.clock import parse_iso  # noqa: E402
from chalicelib.events import EventStatus, status_of  # noqa: E402
from chalicelib.jobs import Job  # noqa: E402
from chalicelib.resources import lanes  # noqa: E402
from chalicelib.routing import route_for  # noqa: E402
from chalicelib.schemes import schemes  # noqa: E402
from chalicelib.store.dynamodb import decode  # noqa: E402
from chalicelib.store.jobs import from_record as job_record  # noqa: E402
from fila.local.defaults import SECRETS as LOCAL_DEFAULTS  # noqa: E402
from fila.local.emulator import aws_env, host_port  # noqa: E402
from fila.local.running import Stack  # noqa: E402
from fila.samples import BUILDERS  # noqa: E402

ADMIN = {"Authorization": f"Bearer {LOCAL_DEFAULTS['ADMIN_TOKEN']}"}
FINAL = {"completed", "failed", "ignored"}
# (source, event type, share of deliveries)
MIX = (("stripe", "payment_intent.succeeded", 0.24), ("stripe", "customer.created", 0.08),
       ("stripe", "customer.updated", 0.08), ("standard", "payment.success", 0.21),
       ("standard", "customer.created", 0.09), ("github", "issues.opened", 0.08), ("github", "push", 0.07),
       ("shopify", "orders/paid", 0.15))
VISIBILITY_SECONDS = 31  # the least above the consumers' 30 s timeout (which AWS requires)
SWEEP_AFTER_SECONDS = 15  # the sweep still runs once a minute; it takes events stored 15 s before
SWEEP_WINDOW_SECONDS = 5  # of each minute, while a sweep of a few hundred events runs (it starts at :00)


@dataclass
class Planned:
    source: str
    event_id: str
    type: str
    email: str
    resend: str | None = None  # "concurrent" or "later"
    acks: list[int] = field(default_factory=list)
    duplicate_acks: int = 0

    @property
    def key(self) -> str:
        return f"{self.source}#{self.event_id}"

    @property
    def jobs(self) -> tuple[str, ...]:
        route = route_for(self.type)
        chained = ("generate-invoice-pdf>send-receipt-email",) if route and "generate-invoice-pdf" in route.jobs else ()
        return (*route.jobs, *chained) if route else ()

    def delivery(self) -> tuple[dict[str, str], bytes]:
        """Headers and body, signed now (an emitter's retry signs again with a new timestamp)."""
        body = BUILDERS[self.source](self.type, self.event_id)
        if self.source == "stripe" and self.type.startswith("customer."):
            body["data"] = {"object": {"id": "cus_" + self.event_id[-14:], "object": "customer",
                                       "email": self.email, "name": "Soak Customer"}}
        elif self.source == "stripe":
            body["data"]["object"]["receipt_email"] = self.email
        elif self.source == "standard":
            body["data"]["email"] = self.email
        raw = json.dumps(body).encode()
        scheme = schemes()[self.source]
        secret = LOCAL_DEFAULTS[scheme.secret_env].split(",")[0]
        headers = scheme.sign(raw, secret, time.time(), self.event_id, self.type)
        return {**headers, "Content-Type": "application/json"}, raw


def plan(n: int, seed: int) -> list[Planned]:
    rng = random.Random(seed)
    run = f"{seed}{int(time.time()) % 100000}"
    kinds = rng.choices(MIX, weights=[w for *_, w in MIX], k=n)
    planned = []
    for i, (source, event_type, _) in enumerate(kinds):
        event_id = {"stripe": "evt_", "standard": "msg_"}.get(source, "") + f"soak{run}x{i:05d}"
        if source == "github":
            event_id = f"0e8a{run}-soak-{i:05d}"
        planned.append(Planned(source, event_id, event_type, f"soak{run}.{i}@example.com"))
    for p in rng.sample(planned, k=n // 10):
        p.resend = rng.choice(("concurrent", "later"))
    return planned


class Soak:
    def __init__(self, events: int, concurrency: int, seed: int, kills: int) -> None:
        self.planned = plan(events, seed)
        self.concurrency, self.seed, self.kills = concurrency, seed, kills
        with_crm = [p for p in self.planned if "update-crm" in p.jobs]
        self.rejected = {p.email for p in random.Random(seed + 1).sample(with_crm, k=max(1, len(with_crm) // 100))}
        self.stack = Stack(SWEEP_AFTER_SECONDS=str(SWEEP_AFTER_SECONDS))
        self.outage = Outage(*host_port(self.stack.aws))
        self.stack.env["AWS_ENDPOINT_URL_SQS"] = self.outage.url  # the API's and consumers' SQS calls
        self.timeline: list[tuple[float, str]] = []
        self.kills_in_a_sweep = 0  # kills in a minute's first seconds, which may fall between a sweep's
        # send and its marks: the events it sent are healed, and no mark says the sweep sent them
        self.sent = 0
        self.statuses: Counter[int] = Counter()
        self.lock = threading.Lock()
        self.started = 0.0
        self.started_wall = 0.0  # the same moment on the clock fila's records use
        self.last_settle = 0.0  # the newest job settle (finished_at) the drain saw, on that clock
        self.chaos_failed: Exception | None = None
        env = aws_env(self.stack.aws)
        self.aws = boto3.session.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                                         aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                                         region_name=env["AWS_DEFAULT_REGION"])
        self.clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = self.aws.client(service, endpoint_url=self.stack.aws)
        return self.clients[service]

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        with self.outage:
            self.stack.start()
            try:
                return self._run()
            finally:
                self.stack.stop()

    def _run(self) -> dict[str, Any]:
        self._tune_visibility()
        time.sleep(3)  # a long poll begun before the change still applies the old 180 s to what it gets
        self._fakes("POST", "crm/_faults", {"transient_rate": 0.05, "reject": sorted(self.rejected),
                                            "seed": self.seed, "timeout_seconds": 6})
        meter = CpuMeter(self.stack)
        with meter:
            cpu = [meter.reading()]
            self.started, self.started_wall = time.monotonic(), time.time()
            chaos = threading.Thread(target=self._chaos, daemon=True)
            chaos.start()
            self._ingest()
            ingested = time.monotonic()
            cpu.append(meter.reading())
            chaos.join()
            if self.chaos_failed is not None:
                raise self.chaos_failed
            self._drain(timeout=max(300.0, len(self.planned) * 0.3))
            drained = time.monotonic()  # the drain's poll saw it (up to a poll and two scans late)
            settled = self.last_settle - self.started_wall
            cpu.append(meter.reading())
        before = self.check(recovered=False)

        self._fakes("POST", "crm/_faults", {})  # the fake recovers: no faults, no rejected contacts
        redriven = {}
        for name, depth in self.dlq_depths().items():
            if depth:
                answer = requests.post(f"{self.stack.base}/admin/api/queues/{name}/redrive", headers=ADMIN, timeout=60)
                redriven[name] = answer.json()["moved"]
        recovery_started = time.monotonic()
        self._drain(timeout=300)
        recovered = time.monotonic()
        after = self.check(recovered=True)
        return {
            "deliveries": len(self.planned), "posts": self.sent, "statuses": dict(self.statuses),
            "resent": Counter(p.resend for p in self.planned if p.resend),
            "ingest_s": round(ingested - self.started, 1), "drain_s": round(drained - ingested, 1),
            "settled_s": round(settled, 1),
            "recovery_s": round(recovered - recovery_started, 1), "redriven": redriven,
            "cpu_pct_of_a_core": {"ingest": cpu_share(cpu[0], cpu[1], ingested - self.started),
                                  "drain": cpu_share(cpu[1], cpu[2], drained - ingested)},
            "timeline": self.timeline, "kills_in_a_sweep": self.kills_in_a_sweep,
            "before_recovery": before, "after_recovery": after,
            "violations": before["violations"] + after["violations"],
        }

    def _tune_visibility(self) -> None:
        sqs = self.client("sqs")
        for key in lanes():
            url = sqs.get_queue_url(QueueName=f"fila-local-{key}")["QueueUrl"]
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": str(VISIBILITY_SECONDS)})

    def _note(self, what: str) -> None:
        """Also the wall clock's second: the sweep runs on the minute, so a kill's place next to it shows."""
        self.timeline.append((round(time.monotonic() - self.started, 1), what))
        print(f"soak: {self.timeline[-1][0]:6.1f}s (:{time.gmtime().tm_sec:02d}) {what}", flush=True)

    def _busy(self) -> bool:
        """Whether the consumers are running jobs right now (the fake CRM is being called), so that
        a kill cuts attempts short rather than hitting idle pollers."""
        before = len(self._fakes("GET", "crm/_received", None))
        time.sleep(0.5)
        return len(self._fakes("GET", "crm/_received", None)) > before

    def _chaos(self) -> None:
        try:
            self._faults()
        except Exception as err:  # the soak fails with it, once ingest has stopped
            self.chaos_failed = err
            raise

    def _faults(self) -> None:
        """Kill the consumers while a job runs, at least 8 s apart (the first after 4 s; a kill waits
        at most 60 s for a running job); cut SQS for 3 s a third of the way in."""
        cut_at = len(self.planned) // 3
        next_kill, killed, cut = 4.0, 0, False
        while killed < self.kills or not cut:
            now = time.monotonic() - self.started
            if not cut and self.sent >= cut_at:
                self._note(f"SQS endpoint unreachable (after {self.sent} posts)")
                self.outage.cut()
                time.sleep(3)
                self.outage.restore()
                self._note("SQS endpoint back")
                cut = True
            elif killed < self.kills and now >= next_kill and (self._busy() or now >= next_kill + 60):
                self.kills_in_a_sweep += time.gmtime().tm_sec < SWEEP_WINDOW_SECONDS
                kill_workers(self.stack)
                killed += 1
                self._note(f"consumers killed ({killed}/{self.kills}) and restarted")
                next_kill = time.monotonic() - self.started + 8
            time.sleep(0.05)

    def _ingest(self) -> None:
        local = threading.local()

        def post(p: Planned) -> None:
            session = getattr(local, "session", None) or requests.Session()
            local.session = session
            for _ in range(60):  # an emitter retries until it gets a 2xx
                headers, body = p.delivery()
                try:
                    response = session.post(f"{self.stack.base}/webhooks/{p.source}", headers=headers, data=body,
                                            timeout=15)
                    status = response.status_code
                except requests.RequestException:
                    status = 0
                with self.lock:
                    self.sent += 1
                    self.statuses[status] += 1
                if status == 200:
                    with self.lock:
                        p.acks.append(status)
                        p.duplicate_acks += bool(response.json()["duplicate"])
                    return
                if self.chaos_failed is not None:
                    return  # the soak has failed: stop sending
                self.stack.assert_running()
                time.sleep(0.5)

        def deliver(p: Planned) -> None:
            if p.resend == "concurrent":
                twins = [threading.Thread(target=post, args=(p,)) for _ in range(2)]
                for t in twins:
                    t.start()
                for t in twins:
                    t.join()
            else:
                post(p)

        with ThreadPoolExecutor(self.concurrency) as pool:
            list(pool.map(deliver, self.planned))
            list(pool.map(post, [p for p in self.planned if p.resend == "later"]))

    def _drain(self, timeout: float) -> None:
        """Until every accepted event is final and no job or message is left anywhere but a DLQ."""
        deadline = time.monotonic() + timeout
        reported = 0.0
        pending, depth, jobs = -1, -1, Counter[str]()
        while time.monotonic() < deadline:
            self.stack.assert_running()
            depths = self.queue_depths()
            depth = sum(depths.values())
            if depth == 0:  # scans are heavy for the emulator: only once the queues are empty
                statuses = self.event_statuses()
                pending = sum(1 for p in self.planned if statuses.get(p.key) not in FINAL)
                records = self.scan("jobs")
                jobs = Counter(j["status"]["S"] for j in records)
                if pending == 0 and set(jobs) <= {"completed", "failed"}:
                    self.last_settle = max((parse_iso(j["finished_at"]["S"]) for j in records if "finished_at" in j),
                                           default=0.0)
                    self._note("drained")
                    return
            if time.monotonic() - reported >= 10:
                queued = {k: v for k, v in depths.items() if v}
                self._note(f"draining: messages {queued}" + (f", {pending} events not final" if not depth else ""))
                reported = time.monotonic()
            time.sleep(2)
        raise TimeoutError(f"not drained after {timeout:.0f}s: {pending} events pending, {depth} messages, jobs {dict(jobs)}")

    # -- what the stack holds --------------------------------------------------------------------

    def scan(self, table: str) -> list[dict[str, Any]]:
        ddb = self.client("dynamodb")
        items, query = [], {"TableName": f"fila-local-{table}", "ConsistentRead": True}
        while True:
            page = ddb.scan(**query)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                return items
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def event_statuses(self) -> dict[str, str]:
        """Each event's status as fila reads it: what was stored, then what its jobs are."""
        by_event: dict[str, list[Job]] = defaultdict(list)
        for item in self.scan("jobs"):
            job = job_record(decode(item))
            if job.event_key:
                by_event[job.event_key].append(job)
        return {i["pk"]["S"]: str(status_of(EventStatus(i["status"]["S"]), by_event[i["pk"]["S"]]))
                for i in self.scan("events")}

    def _queue_attrs(self, name: str) -> dict[str, str]:
        sqs = self.client("sqs")
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        return dict(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"])

    def queue_depths(self) -> dict[str, int]:
        """Messages per queue: visible, in flight and delayed."""
        return {key: sum(int(v) for v in self._queue_attrs(f"fila-local-{key}").values())
                for key in lanes()}

    def dlq_depths(self) -> dict[str, int]:
        return {key: sum(int(v) for v in self._queue_attrs(f"fila-local-{key}-dlq").values())
                for key in lanes()}

    def dlq_messages(self) -> list[dict[str, Any]]:
        """Every DLQ message, read without consuming it (each is made visible again)."""
        sqs = self.client("sqs")
        found = []
        for key in lanes():
            url = sqs.get_queue_url(QueueName=f"fila-local-{key}-dlq")["QueueUrl"]
            seen: list[dict[str, Any]] = []
            while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30,
                                               MessageAttributeNames=["All"]).get("Messages", []):
                seen += batch
            for m in seen:
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
            found += [{"queue": key, "body": json.loads(m["Body"]),
                       "reason": m.get("MessageAttributes", {}).get("reason", {}).get("StringValue")} for m in seen]
        return found

    def not_queued_at_ack(self) -> set[str]:
        """Events the API stored but could not send (its warning "enqueue failed" names each)."""
        keys = set()
        for line in self.stack.output().splitlines():
            if "enqueue failed" in line and "{" in line:
                with suppress(ValueError, KeyError):
                    record = json.loads(line[line.index("{"):])
                    keys.add(f"{record['source']}#{record['event_id']}")
        return keys

    def _fakes(self, method: str, path: str, body: Any) -> Any:
        response = requests.request(method, f"{self.stack.base}/_fakes/{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    # -- the checks ------------------------------------------------------------------------------

    def check(self, recovered: bool) -> dict[str, Any]:
        violations: list[str] = []
        accepted = [p for p in self.planned if p.acks]
        stored = self.scan("events")
        statuses = self.event_statuses()
        swept = {e["pk"]["S"] for e in stored if "swept_at" in e}
        not_queued = self.not_queued_at_ack()
        jobs = {j["job_id"]["S"]: j for j in self.scan("jobs")}
        violations += [f"never accepted: {p.key}" for p in self.planned if not p.acks]
        violations += [f"accepted but not stored: {p.key}" for p in accepted if p.key not in statuses]
        violations += [f"stored but never accepted: {k}" for k in set(statuses) - {p.key for p in accepted}]
        for p in accepted:
            expected = "ignored" if not p.jobs else (
                "failed" if p.email in self.rejected and not recovered else "completed")
            if statuses.get(p.key) != expected:
                violations.append(f"{p.key} ({p.type}) is {statuses.get(p.key)}, expected {expected}")
            if p.resend and (len(p.acks) != 2 or p.duplicate_acks != 1):
                violations.append(f"{p.key} sent twice: {len(p.acks)} acks, {p.duplicate_acks} marked duplicate")

        crm = self._fakes("GET", "crm/_received", None)
        slack = self._fakes("GET", "slack/_received", None)
        ses = requests.get(f"{self.stack.aws}/moto-api/data.json", timeout=60).json().get("ses", {}).get("Message", [])
        s3 = self.client("s3")
        pdfs: Counter[str] = Counter()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="fila-local-documents", Prefix="invoices/"):
            pdfs.update("#".join(o["Key"].split("/")[1:3]) for o in page.get("Contents", []))
        applied = Counter(r["headers"].get("idempotency-key") for r in crm if r["applied"])
        # the hourly sync-crm may fire during a run (at the top of the hour): its upserts are no job's,
        # and each of its keys (contact + change) is applied once
        synced = {k: applied.pop(k) for k in [k for k in applied if str(k).startswith("sync-crm:")]}
        violations += [f"sync-crm applied {k} {n} times" for k, n in synced.items() if n > 1]
        slack_by_event = Counter(r["json"]["text"].rsplit("event ", 1)[-1].rstrip(")").replace("/", "#", 1)
                                 for r in slack)
        emails = Counter(to for m in ses for to in m["destinations"]["ToAddresses"])
        cut_short = {job_id for job_id, j in jobs.items()
                     if int(j["attempts_made"]["N"]) > len(j.get("attempts", {}).get("L", [])) + 1}

        explained = duplicated = 0
        for p in accepted:
            crm_job = f"{p.key}:update-crm"
            want_crm = int("update-crm" in p.jobs and (recovered or p.email not in self.rejected))
            got = applied.pop(crm_job, 0)
            if got != want_crm:
                violations.append(f"{crm_job}: CRM applied {got}, expected {want_crm}")
                duplicated += got > want_crm
            want_email = int(bool({"generate-invoice-pdf", "send-welcome-email"} & set(p.jobs)))
            email_job = f"{p.key}:" + ("generate-invoice-pdf>send-receipt-email" if "generate-invoice-pdf" in p.jobs
                                       else "send-welcome-email")
            for what, count, want, job_id in (
                    ("Slack messages", slack_by_event[p.key], int("notify-slack" in p.jobs), f"{p.key}:notify-slack"),
                    ("emails", emails[p.email], want_email, email_job),
                    ("PDFs", pdfs[p.key], int("generate-invoice-pdf" in p.jobs), None)):
                if count == want:
                    continue
                if count == want + 1 and want and job_id in cut_short:
                    explained += 1  # a send repeated by the worker killed right after it (no idempotency key)
                    continue
                violations.append(f"{p.key}: {count} {what}, expected {want}")
                duplicated += count > want
        violations += [f"CRM effect for no accepted job: {k}" for k, n in applied.items() if n]
        lost = [p.key for p in accepted if statuses.get(p.key) not in FINAL]

        dead = self.dlq_messages()
        expected_dead = set() if recovered else {f"{p.key}:update-crm" for p in accepted if p.email in self.rejected}
        dead_ids = Counter(str(m["body"].get("job_id")) for m in dead)
        violations += [f"in a DLQ, not a permanent failure: {m['body'].get('job_id') or m['body']}"
                       for m in dead if m["body"].get("job_id") not in expected_dead]
        violations += [f"permanent failure missing from the DLQs: {j}" for j in expected_dead - set(dead_ids)]
        # a worker killed between its DLQ send and the job's FAILED record: the next attempt sends it again
        dlq_repeats = {j for j, n in dead_ids.items() if n == 2 and j in jobs
                       and int(jobs[j]["attempts_made"]["N"]) > len(jobs[j].get("attempts", {}).get("L", []))}
        violations += [f"{j} is {n} times in the DLQs" for j, n in dead_ids.items() if n > 1 and j not in dlq_repeats]
        violations += [f"DLQ message without its reason: {m['body'].get('job_id')}" for m in dead
                       if not m["reason"] or "422" not in m["reason"]]

        faults = Counter(r["fault"] for r in crm if r.get("fault"))
        return {
            "accepted": len(accepted), "events_final": sum(1 for s in statuses.values() if s in FINAL),
            "event_statuses": dict(Counter(statuses.values())), "jobs": dict(Counter(j["status"]["S"] for j in jobs.values())),
            "crm_requests": len(crm), "crm_applied": sum(1 for r in crm if r["applied"]),
            "crm_replays_absorbed": sum(1 for r in crm if r["replayed"]), "crm_faults": dict(faults),
            "slack_messages": len(slack), "emails": len(ses), "pdfs": sum(pdfs.values()),
            "dlq_messages": len(dead), "attempts_cut_short": len(cut_short),
            "not_queued_at_ack": len(not_queued), "swept": len(swept), "swept_not_queued": len(not_queued & swept),
            "repeated_sends_explained_by_kills": explained, "dlq_repeats_explained_by_kills": len(dlq_repeats),
            "lost": len(lost), "duplicated_effects": duplicated,
            "violations": violations,
        }


def markdown(result: dict[str, Any]) -> str:
    before, after = result["before_recovery"], result["after_recovery"]
    faults = before["crm_faults"]
    rows = [
        ("deliveries (distinct events)", result["deliveries"]),
        ("rate limits", ", ".join(f"{k} {v}" for k, v in result.get("rate_limits", {}).items()) or "none"),
        ("HTTP posts (re-deliveries and emitter retries included)", result["posts"]),
        ("answers", ", ".join(f"{k or 'no answer'}: {v}" for k, v in sorted(result["statuses"].items()))),
        ("re-delivered (concurrently / later)",
         f"{result['resent'].get('concurrent', 0)} / {result['resent'].get('later', 0)}"),
        ("CRM faults injected (503 / 429 / timeout / rejected)",
         f"{faults.get('503', 0)} / {faults.get('429', 0)} / {faults.get('timeout', 0)} / {faults.get('rejected', 0)}"),
        ("consumer kills; SQS outages", f"{sum('killed' in w for _, w in result['timeline'])}; "
                                        f"{sum('unreachable' in w for _, w in result['timeline'])} of 3 s"),
        ("events whose send failed at the ack (SQS cut); of them enqueued by the recovery sweep",
         f"{before['not_queued_at_ack']}; {before['swept_not_queued']} (the rest were carried by their container's "
         "next send, or had reached SQS)"),
        ("events enqueued by the sweep in all", f"{before['swept']} (the others were still queued "
                                                f"{SWEEP_AFTER_SECONDS} s after storing: a second message, a no-op)"),
        ("attempts cut short by kills", before["attempts_cut_short"]),
        ("accepted = final", f"{before['accepted']} = {before['events_final']}"),
        ("in DLQs after drain (all rejected contacts, with reason)", before["dlq_messages"]),
        ("redriven once, then completed", f"{sum(result['redriven'].values())} → DLQs {after['dlq_messages']}"),
        ("effects: CRM applied / Slack / PDFs / emails",
         f"{after['crm_applied']} / {after['slack_messages']} / {after['pdfs']} / {after['emails']}"),
        ("CRM repeats absorbed by Idempotency-Key", after["crm_replays_absorbed"]),
        ("Slack/SES sends repeated by a kill (no key to absorb them)", after["repeated_sends_explained_by_kills"]),
        ("lost (accepted, not final) / duplicated effects not explained by a kill", f"{before['lost']} / {after['duplicated_effects']}"),
        ("violations", len(result["violations"])),
        ("settled: first post → last job settled (its `finished_at`)", f"{result['settled_s']} s"),
        ("ingest / drain as polled / recovery (redrive → drained)",
         f"{result['ingest_s']} s / {result['drain_s']} s / {result['recovery_s']} s"),
        *((f"CPU during {phase}, % of one core (machine = {os.cpu_count()} cores x 100)",
           ", ".join(f"{role} {pct}" for role, pct in shares.items()))
          for phase, shares in result["cpu_pct_of_a_core"].items()),
    ]
    return "| soak | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--no-baseline", action="store_true", help="skip the seed system's faults scenario")
    args = parser.parse_args()
    print(f"rate limits: {rate_limits()}", flush=True)
    result = Soak(args.events, args.concurrency, args.seed, args.kills).run()
    result["rate_limits"] = rate_limits()
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    result["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    if not args.no_baseline:
        from bench.ack import bull_run

        os.environ.update({"FAULT_REQUESTS": str(args.events), "FAULT_CONCURRENCY": "16"})
        raw = bull_run(args.events, scenarios="faults")
        result["bull_faults"] = (raw or {}).get("faults")
    out = ROOT / "bench" / "results" / f"soak-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(markdown(result))
    print("\n".join(f"VIOLATION {v}" for v in result["violations"]) or "no violations")
    print(f"raw results: {out}")
    sys.exit(1 if result["violations"] else 0)


if __name__ == "__main__":
    main()
