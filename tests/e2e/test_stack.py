"""`fila up` (what `make run` calls): healthy, serving, and gone without a trace when stopped."""

from __future__ import annotations

import functools
import json
import os
import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from fila.local import snapshot
from fila.local.emulator import listening
from fila.local.ports import holder
from fila.local.running import Stack, alive, descendants
from fila.local.workers import BACKGROUND_NICE
from tests.e2e.test_ingest_e2e import event_status
from tests.e2e.test_processing import deliver, payment, received, wait_for
from tests.signing import stripe_delivery

pytestmark = pytest.mark.e2e


@pytest.mark.xdist_group("stack")
def test_health_is_ok_on_the_running_stack(stack: Stack) -> None:
    response = requests.get(stack.base + "/health", timeout=5)
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    out = stack.output()
    assert stack.base in out and f"{stack.base}/admin" in out and "fila-local-admin" in out


def _priority(pid: int) -> tuple[int, int | None]:
    """A process's nice, and its session group's where Linux groups sessions (else None; the root group,
    a container's first session, has an empty line and weighs as nice 0)."""
    group = Path(f"/proc/{pid}/autogroup")
    line = group.read_text().split() if group.exists() else None
    return os.getpriority(os.PRIO_PROCESS, pid), None if line is None else int(line[-1]) if line else 0


@pytest.mark.xdist_group("stack")
def test_the_consumers_run_behind_the_api_and_the_emulator(stack: Stack) -> None:
    assert stack.proc is not None
    role = {pid: Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            for pid in descendants(stack.proc.pid)}
    workers = [pid for pid, command in role.items() if "fila.cli workers" in command]
    others = [pid for pid, command in role.items() if "serve-api" in command or "moto_server" in command]
    assert len(workers) == 1 and len(others) >= 2
    nice, group = _priority(workers[0])
    for pid in others:
        other_nice, other_group = _priority(pid)
        assert nice >= min(19, other_nice + BACKGROUND_NICE)  # 19: the lowest priority there is
        assert group is None or other_group is None or group >= other_group + BACKGROUND_NICE


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stopping_leaves_no_process_or_port_behind(sig: int) -> None:
    running = Stack().start()
    assert running.proc is not None
    children = descendants(running.proc.pid)
    assert len(children) >= 3  # emulator, API, workers
    running.assert_running()
    took = running.stop(sig)
    with pytest.raises(RuntimeError, match=r"fila up exited \(0\)"):
        running.assert_running()  # what a soak waiting on a stopped stack is told
    assert took < 10
    time.sleep(0.2)
    assert descendants(running.proc.pid) == set()
    assert not any(alive(pid) for pid in children)
    ours = children | {running.proc.pid}
    for port in (running.port, running.aws_port):  # a freed port may be taken at once by a parallel test
        held = holder(port)
        assert held is None or (held.pid is not None and held.pid not in ours), held


def test_an_endpoint_already_listening_is_used_as_is(aws_endpoint: str) -> None:
    running = Stack(AWS_ENDPOINT_URL=aws_endpoint).start()
    try:
        out = running.output()
        assert "using what already listens there" in out and "fila.local.moto_server" in out  # who holds it
    finally:
        running.stop()
    assert listening("127.0.0.1", int(aws_endpoint.rsplit(":", 1)[1]))  # not ours to stop


def test_what_was_acknowledged_before_a_stop_is_still_processed_after_a_restart_and_fresh_forgets_it(
        tmp_path: Path) -> None:
    """The emulator saves its state when `fila up` stops and restores it at the next start; `--fresh`
    starts empty."""
    running = Stack(FILA_STATE_DIR=str(tmp_path)).start()
    try:
        # update-crm is told to come back in 20 s: it waits in SQS, invisible, while the stack restarts
        requests.post(f"{running.base}/_fakes/crm/_script", timeout=5,
                      json={"responses": [{"status": 429, "retry_after": 20}]})
        email = f"restart+{time.time_ns()}@example.com"
        event_id = deliver(running, "stripe", *stripe_delivery(payment(email)))
        job_id = f"stripe#{event_id}:update-crm"
        wait_for(lambda: _job(running, job_id)["status"] == "delayed")
        wait_for(lambda: _job(running, f"stripe#{event_id}:generate-invoice-pdf")["status"] == "completed")
        assert event_status(running, "stripe", event_id) != "completed"
        assert running.stop() < 10
        assert "emulator state saved" in running.output()

        running.start()  # same ports, same state folder; the fake CRM starts healthy
        assert "emulator state restored" in running.output()
        wait_for(lambda: event_status(running, "stripe", event_id) == "completed", timeout=60)
        job = _job(running, job_id)
        assert job["status"] == "completed" and len(job["history"]) >= 1  # the failure before the stop
        crm = [r for r in received(running, "crm") if r["json"]["email"] == email]
        keys = [r["headers"]["idempotency-key"] for r in crm]
        # the job's upsert once; the hourly sync may also push this contact if the hour turns meanwhile
        assert keys.count(job_id) == 1 and all(k == job_id or k.startswith("sync-crm:") for k in keys), keys
        pdf = requests.get(f"{running.base}/admin/api/events/stripe/{event_id}", headers=ADMIN, timeout=5)
        assert {j["name"]: j["status"] for j in pdf.json()["jobs"]}["send-receipt-email"] == "completed"
        assert deliver(running, "stripe", *stripe_delivery(payment(email) | {"id": event_id})) == event_id
        assert _job(running, job_id)["status"] == "completed"

        running.stop()
        assert (tmp_path / "emulator" / "manifest.json").exists()
        running.start("--fresh")
        assert _event(running, event_id).status_code == 404
    finally:
        running.stop()


def test_a_kill_9_loses_nothing_acknowledged_before_the_last_snapshot(tmp_path: Path) -> None:
    """The emulator snapshots its state while it changes: a SIGKILL of the whole stack mid-burst keeps
    every event acknowledged before the last snapshot's cut, and each of them is still processed."""
    running = Stack(FILA_STATE_DIR=str(tmp_path)).start()
    acked: list[tuple[str, float]] = []
    try:
        for n in range(30):
            event_id = deliver(running, "stripe", *stripe_delivery(payment(f"crash{n}+{time.time_ns()}@example.com")))
            acked.append((event_id, time.time()))
            time.sleep(0.1)
        store = snapshot.Store(tmp_path / "emulator")
        wait_for(lambda: (store.cut_at() or 0) > acked[19][1], timeout=30)  # a snapshot after 20 acks...
        running.kill()  # ...and then the crash, mid-processing: jobs claimed, messages in flight
        cut = store.cut_at()
        assert cut is not None
        kept = [event_id for event_id, at in acked if at < cut]
        assert len(kept) >= 20, f"only {len(kept)} of {len(acked)} acks before the last cut"
        running.start()
        assert "visible again" in running.output()
        for event_id in kept:
            wait_for(functools.partial(_completed, running, event_id), timeout=90)
    finally:
        running.stop()


def _completed(stack: Stack, event_id: str) -> bool:
    return event_status(stack, "stripe", event_id) == "completed"


def test_an_unreadable_state_is_set_aside_and_the_emulator_starts_empty(tmp_path: Path) -> None:
    folder = tmp_path / "emulator"
    folder.mkdir()
    (folder / "00000001-main.pickle").write_bytes(b"not a pickle")
    (folder / "manifest.json").write_text(json.dumps({"format": snapshot.FORMAT, "generation": 1, "cut_at": 0,
                                                      "files": {"main": "00000001-main.pickle"}}))
    running = Stack(FILA_STATE_DIR=str(tmp_path)).start()
    try:
        assert "could not be loaded" in running.output()
        assert (tmp_path / "emulator.unreadable" / "00000001-main.pickle").read_bytes() == b"not a pickle"
    finally:
        running.stop()
    assert snapshot.Store(folder).files()  # saved afresh at the stop


ADMIN = {"Authorization": "Bearer fila-local-admin"}


def _event(stack: Stack, event_id: str) -> requests.Response:
    return requests.get(f"{stack.base}/admin/api/events/stripe/{event_id}", headers=ADMIN, timeout=5)


def _job(stack: Stack, job_id: str) -> dict[str, Any]:
    response = requests.get(f"{stack.base}/admin/api/jobs/{quote(job_id, safe='')}", headers=ADMIN, timeout=5)
    return dict(response.json()) if response.status_code == 200 else {"status": None}


def test_a_dead_workers_process_is_started_again_and_processing_goes_on() -> None:
    from bench.chaos import kill_workers

    running = Stack().start()
    try:
        kill_workers(running)  # SIGKILL; returns once `fila up` has started new ones
        assert "the workers process exited (-9); starting a new one" in running.output()
        # the dead process's long polls (2 s) still run on the emulator; a message one took would stay
        # invisible for the queue's 180 s (as on SQS), not lost: deliver once they are over
        time.sleep(3)
        event_id = deliver(running, "stripe", *stripe_delivery(payment("phoenix@example.com")))
        wait_for(lambda: event_status(running, "stripe", event_id) == "completed", timeout=60)
    finally:
        running.stop()
