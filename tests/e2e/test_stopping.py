"""Stopping is always clean: signals at any moment, a port already taken (bench/stop_stress.py runs
the long version)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time

import pytest

from bench.stop_stress import plan, run_round
from fila import ROOT
from fila.local.emulator import free_port, listening

pytestmark = pytest.mark.e2e
ROUNDS = 5


def test_signals_at_random_moments_always_stop_the_whole_stack_within_10_s() -> None:
    seed = int(os.environ.get("FILA_STOP_SEED") or random.randrange(1_000_000))
    print(f"stop stress seed {seed} (FILA_STOP_SEED={seed} repeats this run)")
    rng = random.Random(seed)
    results = [run_round(plan(rng, n)) for n in range(1, ROUNDS + 1)]
    failed = [r for r in results if r.problems]
    assert not failed, f"seed {seed}: " + "\n\n".join(f"round {r.number} {r.signals}: {r.problems}" for r in failed)
    assert all(r.stopped_after is not None and r.stopped_after <= 10 for r in results)


def _listener(*argv: str) -> subprocess.Popen[bytes]:
    """A process that holds a port, with ``argv`` in its command line."""
    port = free_port()
    code = ("import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); "
            "s.listen(); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(port), *argv])
    deadline = time.monotonic() + 10
    while not listening("127.0.0.1", port):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.port = port  # type: ignore[attr-defined]
    return proc


@pytest.mark.parametrize(("argv", "looks_like_fila"), [(("unrelated",), False), (("-m", "fila.cli", "serve-api"), True)])
def test_a_taken_api_port_names_its_holder_and_starts_nothing(argv: tuple[str, ...], looks_like_fila: bool) -> None:
    holder = _listener(*argv)
    aws_port = free_port()
    try:
        env = {**os.environ, "PORT": str(holder.port), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{aws_port}",  # type: ignore[attr-defined]
               "FILA_STATE_DIR": ""}
        done = subprocess.run([sys.executable, "-m", "fila.cli", "up"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode != 0
        assert f"pid {holder.pid}" in done.stderr and " ".join(argv) in done.stderr
        assert ("earlier fila stack" in done.stderr) is looks_like_fila
        assert f"kill {holder.pid}" in done.stderr
        assert not listening("127.0.0.1", aws_port)  # it never half-started: no emulator
    finally:
        holder.kill()
        holder.wait()
