"""`fila up` (what `make run` calls): healthy, serving, and gone without a trace when stopped."""

from __future__ import annotations

import signal
import time

import pytest
import requests

from fila.local.emulator import listening
from fila.local.running import Stack, descendants

pytestmark = pytest.mark.e2e


def test_health_is_ok_on_the_running_stack(stack: Stack) -> None:
    response = requests.get(stack.base + "/health", timeout=5)
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    out = stack.output()
    assert stack.base in out and f"{stack.base}/admin" in out and "fila-local-admin" in out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stopping_leaves_no_process_or_port_behind(sig: int) -> None:
    running = Stack().start()
    assert running.proc is not None
    children = descendants(running.proc.pid)
    assert len(children) >= 3  # emulator, API, workers
    took = running.stop(sig)
    assert took < 10
    time.sleep(0.2)
    assert descendants(running.proc.pid) == set()
    assert not any(_alive(pid) for pid in children)
    assert not listening("127.0.0.1", running.port) and not listening("127.0.0.1", running.aws_port)


def test_an_endpoint_already_listening_is_used_as_is(aws_endpoint: str) -> None:
    running = Stack(AWS_ENDPOINT_URL=aws_endpoint).start()
    try:
        assert "using what already listens there" in running.output()
    finally:
        running.stop()
    assert listening("127.0.0.1", int(aws_endpoint.rsplit(":", 1)[1]))  # not ours to stop


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
