"""One SQS consumer per lane, derived from the lanes' declaration (chalicelib/resources.json).

A batch's records run at once, up to the lane's ``parallel`` (Lambda runs a handler per batch: ten
100 ms CRM calls take 100 ms, not a second), each keeping its own result. Records of one job or of
one event run one after the other, never racing each other. Each invocation has its own pool, as each
Lambda container has: the local stack runs a lane's concurrent invocations in one process.

The records that start at once claim their jobs together: one all-or-nothing write and one read for
the batch instead of a conditional write per job (the same condition for each; a job that is not
runnable makes each claim on its own). Per job that is less than half the claim's CPU, the
container's and DynamoDB's together (1.2 ms against 2.7 on the emulator), for two write units a claim
instead of one, and a consistent read.

A record's wakes (the messages of the jobs it created: a payment event's receipt, say) are held until
its batch is done and sent together, ten to a call per lane, before any record is reported done; a
record whose wakes could not be sent is seen again, and waking again is what its second run does.

Partial batch responses: with ``ReportBatchItemFailures`` on the mapping (what ``make deploy`` sets,
and says so with ``FILA_BATCH_RESPONSE=partial``), the records to see again are reported and Lambda
deletes the rest. Without it (a plain ``chalice deploy``), Lambda would delete the whole batch on
success, losing a retry: so the consumer deletes the records it finished itself and fails the
invocation while any remain, and logs loudly that it is doing so.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import Iterable
from functools import cache
from typing import Any

from chalice import Blueprint
from chalice.app import SQSEvent

from chalicelib import dispatch, pools, runtime, sweep, worker
from chalicelib.jobs import Job
from chalicelib.logs import logger
from chalicelib.queues import HeldWakes, send_held, unheld
from chalicelib.resources import Lane, lanes
from chalicelib.settings import resource_name
from chalicelib.system import JobSystem

blueprint = Blueprint(__name__)
DEFAULT_REMAINING_MS = 30_000
SWEEP_MARGIN_SECONDS = 5.0  # of an invocation's time, left to an early sweep's last page and the batch


class RecordsLeft(Exception):
    """Some records of the batch are to be seen again, and Lambda cannot be told which."""


def _message(record: dict[str, Any]) -> Any:
    """The record's body, parsed once per record (None if it is not JSON)."""
    try:
        return json.loads(record["body"])
    except (ValueError, TypeError, KeyError):  # not JSON, or no body at all: a poison record
        return None


def process(system: JobSystem, record: dict[str, Any], message: Any, lane: str, remaining_ms: float,
            claimed: Job | None = None) -> bool:
    """One record (``message``: its parsed body); True when it is done (to delete), False to see it again.
    ``claimed``: its job, claimed with its batch's."""
    kind = message.get("kind") if isinstance(message, dict) else None
    attributes = record.get("attributes", {})
    if kind == "event":
        redelivered = int(attributes.get("ApproximateReceiveCount", "1")) > 1
        dispatch.take_event(system, message, redelivered=redelivered, lane=lane, remaining_ms=remaining_ms)
        return True
    if kind == "job" and isinstance(message.get("job_id"), str):
        delivery = worker.Delivery(receipt_handle=record["receiptHandle"], body=message, lane=lane,
                                   sent_at=int(attributes.get("SentTimestamp", "0")) / 1000)
        return worker.run(system, delivery, remaining_ms, claimed=claimed)
    if kind in (sweep.REQUEST["kind"], sweep.RESEND):  # after a failed enqueue (sweep.Stranded)
        queues = unheld(system.queues)  # sent before the batch ends: the sweep marks after sending

        def hold() -> None:
            queues.change_visibility(lane, record["receiptHandle"], sweep.HOLD_SECONDS)

        if kind == sweep.REQUEST["kind"]:
            sweep.sweep(system.with_queues(queues), hold=hold,
                        budget_seconds=min(sweep.BUDGET_SECONDS, remaining_ms / 1000 - SWEEP_MARGIN_SECONDS))
            return True
        if sweep.carries_events(message):
            hold()
            sweep.resend(queues, message["events"])
            return True
    system.queues.to_dlq(lane, {"kind": "poison", "body": record["body"][:200_000]},
                         "the message is not a fila event or job message")
    logger.warning("poison message moved to the DLQ", extra={"message_id": record["messageId"], "lane": lane})
    return True


def _subject(record: dict[str, Any], message: Any) -> str:
    """What a record is about (a job, an event): records about the same thing never run at once."""
    try:
        return str(message.get("job_id") or f"{message['source']}#{message['event_id']}")
    except (KeyError, TypeError, AttributeError):
        return record["messageId"]


def handle_batch(system: JobSystem, lane: Lane, records: list[dict[str, Any]], context: Any = None
                 ) -> dict[str, list[dict[str, str]]]:
    """Process a batch; the partial batch response (or RecordsLeft, when those are off)."""
    held: dict[int, HeldWakes] = {}  # by id(record): a test's records may share a message id

    def remaining() -> float:
        return float(context.get_remaining_time_in_millis()) if context is not None else DEFAULT_REMAINING_MS

    def run_group(group: list[tuple[dict[str, Any], Any]]) -> list[tuple[dict[str, Any], bool]]:
        out = []
        for record, message in group:
            wakes = held[id(record)] = HeldWakes(system.queues)
            try:
                done = process(system.with_queues(wakes), record, message, lane.name, remaining(),
                               claimed.get(id(record)))
            except Exception:
                logger.exception("record failed; SQS delivers it again",
                                 extra={"message_id": record.get("messageId")})
                done = False
            out.append((record, done))
        return out

    groups: dict[str, list[tuple[dict[str, Any], Any]]] = defaultdict(list)
    for record in records:
        message = _message(record)
        groups[_subject(record, message)].append((record, message))
    outcomes: Iterable[list[tuple[dict[str, Any], bool]]]
    claimed: dict[int, Job] = {}
    if len(groups) == 1 or lane.parallel <= 1:
        outcomes = [run_group(g) for g in groups.values()]
    else:
        claimed = _claim_at_once(system, lane, [g[0] for g in groups.values()], remaining())
        outcomes = list(pools.pool(f"consume-{lane.name}", lane.parallel).map(run_group, groups.values()))
    unsent = send_held(system.queues, held)  # before any record is reported done
    results = [(record, done and id(record) not in unsent)
               for outcome in outcomes for record, done in outcome]
    system.flush()  # the batch's counts, in one write per lane and minute
    failed = [record for record, done in results if not done]
    if os.environ.get("FILA_BATCH_RESPONSE") == "partial":
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in failed]}
    _without_partial_responses(system, lane, [r for r, done in results if done], failed)
    return {"batchItemFailures": []}


def _claim_at_once(system: JobSystem, lane: Lane, firsts: list[tuple[dict[str, Any], Any]],
                   remaining_ms: float) -> dict[int, Job]:
    """The jobs of the records that start at once (each group's first), claimed together: two calls for
    the batch instead of one per job. By id(record); a record left out claims its job itself (fewer than
    two to claim, one of them not runnable, or the write failed)."""
    now = time.time()
    mine = {m["job_id"]: record for record, m in firsts if worker.goes_to_claim(system, m, lane.name, now)}
    if len(mine) < 2:
        return {}
    try:
        jobs = system.jobs.claim_all(list(mine), worker.lock_until(now, remaining_ms), now)
    except Exception as err:  # the records' own claims say what is wrong, one by one
        logger.warning("a batch's claims failed together; claiming one by one",
                       extra={"lane": lane.name, "error": repr(err)[:300]})
        return {}
    return {id(mine[job_id]): job for job_id, job in jobs.items() if job_id in mine}


@cache
def _warn_once(lane: str) -> None:
    logger.error("partial batch responses are off for this lane's mapping: fila deletes the records it "
                 "finished itself and fails the invocation while any remain (make deploy turns them on)",
                 extra={"lane": lane})


def _without_partial_responses(system: JobSystem, lane: Lane, done: list[dict[str, Any]],
                               failed: list[dict[str, Any]]) -> None:
    if not failed:
        return  # Lambda deletes the whole batch, which is what was wanted
    _warn_once(lane.name)
    system.queues.delete(lane.name, [r["receiptHandle"] for r in done])
    raise RecordsLeft(f"{len(failed)} of {len(done) + len(failed)} records are to be seen again")


def _consumer(lane: Lane) -> Any:
    def consume(event: SQSEvent) -> dict[str, list[dict[str, str]]]:
        return handle_batch(runtime.system(), lane, [record.to_dict() for record in event],
                            getattr(event, "context", None))

    consume.__name__ = consume.__qualname__ = lane.function  # Lambda's handler string names it
    return blueprint.on_sqs_message(queue=resource_name(lane.name), name=lane.function,
                                    batch_size=lane.batch_size,
                                    maximum_batching_window_in_seconds=lane.batching_window,
                                    maximum_concurrency=lane.concurrency)(consume)


# One module-level function per lane, named as Lambda's handler string says: consume_high, …
globals().update({lane.function: _consumer(lane) for lane in lanes().values()})
