"""`fila up`: the whole local stack in one command, and everything it started stopped on a signal.

Processes: the AWS emulator (moto's server, unless an endpoint already listens), the API (waitress
+ Chalice) and the workers (SQS pollers, schedules, TTL). Each child is its own process group, so
a group signal meant for `make` reaches only this process, which stops them in order: API and
workers first, the emulator last (it saves its state), all within 10 s of the first signal, however
many signals arrive and whenever they arrive. A child that dies is started again (unless it keeps
dying within seconds), the emulator from its last snapshot. ``--fresh`` starts the emulator empty.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

from fila.local import emulator, ports
from fila.local.signals import StopSignals

STOP_GRACE_SECONDS = 3.0  # API and workers together
EMULATOR_GRACE_SECONDS = 5.0  # it saves its state before it exits
CRASH_LOOP_SECONDS = 5.0  # a process that dies this soon after its start,
CRASH_LOOP_DEATHS = 3  # this many times in a row, is crash-looping: the stack stops


@dataclass
class Child:
    """A supervised process of the stack, started again when it dies."""

    name: str
    start: Callable[[], subprocess.Popen[bytes] | None]
    proc: subprocess.Popen[bytes] | None = None
    started: float = field(default_factory=time.monotonic)
    quick_deaths: int = 0

    def run(self) -> None:
        self.proc, self.started = self.start(), time.monotonic()

    def died(self) -> bool:
        """True when it exited and was started again; raises when it keeps exiting."""
        if self.proc is None or self.proc.poll() is None:
            return False
        quick = time.monotonic() - self.started < CRASH_LOOP_SECONDS
        self.quick_deaths = self.quick_deaths + 1 if quick else 0
        if self.quick_deaths >= CRASH_LOOP_DEATHS:
            raise RuntimeError(f"the {self.name} process keeps exiting")
        print(f"fila: the {self.name} process exited ({self.proc.returncode}); starting a new one",
              file=sys.stderr, flush=True)
        self.run()
        return True


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "fila.cli", *args], start_new_session=True)


def stop_all(procs: list[subprocess.Popen[bytes] | None], grace: float) -> None:
    """SIGTERM them all at once, SIGKILL what is left after ``grace`` (one grace for all)."""
    live = [p for p in procs if p is not None and p.poll() is None]
    for proc in live:
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in live:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def up(host: str = "127.0.0.1", port: int | None = None, fresh: bool = False) -> int:
    stop = StopSignals()
    port = port or int(os.environ.get("PORT", "8000"))
    taken = ports.holder(port)
    if taken is not None:
        print(f"fila: cannot serve the API: {taken.describe(port)}", file=sys.stderr, flush=True)
        return 1
    endpoint = emulator.endpoint()
    print(f"fila: AWS endpoint {endpoint}", flush=True)
    state = emulator.state_dir()
    if fresh and state is not None:
        shutil.rmtree(state, ignore_errors=True)
    aws_host, aws_port = emulator.host_port(endpoint)
    holder = ports.holder(aws_port) if emulator.listening(aws_host, aws_port) else None
    if holder is not None:
        print(f"fila: using what already listens there ({holder.describe(aws_port).split(': ', 1)[-1]})",
              flush=True)
    aws = Child("emulator", lambda: emulator.start_moto(endpoint, log=None, state=state, stop=stop))
    api = Child("API", lambda: _spawn("serve-api", "--host", host, "--port", str(port)))
    workers = Child("workers", lambda: _spawn("workers"))
    try:
        aws.run()
        if aws.proc is not None:
            print("fila: started moto's server there", flush=True)
        if stop.requested:
            return 0
        chosen = {k: v for k, v in os.environ.items() if k.startswith("AWS_ENDPOINT_URL_")}
        os.environ.update(emulator.local_env(endpoint, port))  # the emulator's direct endpoints too,
        os.environ.update(chosen)  # unless the user chose one for a service
        from fila.local.provision import Interrupted, provision

        try:
            provision(stopping=lambda: stop.requested)
        except Interrupted:
            return 0
        if stop.requested:
            return 0
        for child in (api, workers):
            child.run()
        base = f"http://{host}:{port}"
        if not _wait_healthy(base, [api, workers], stop):
            return 0 if stop.requested else 1
        print(f"\nfila is up ({os.environ['FILA_STAGE']} stage)\n"
              f"  API        {base}\n  webhooks   {base}/webhooks/{{stripe,github,shopify,standard}}\n"
              f"  dashboard  {base}/admin\n  admin token {os.environ.get('ADMIN_TOKEN', '(from SSM)')}\n"
              f"  AWS        {endpoint}\nCtrl-C stops everything.", flush=True)
        while not stop.wait(0.5):
            if aws.proc is not None:
                aws.died()  # restored from its last snapshot, as a crashed machine would be
            api.died()
            workers.died()
        return 0
    except RuntimeError as err:
        print(f"fila: {err}; stopping", file=sys.stderr, flush=True)
        return 1
    except emulator.StartAborted:
        return 0
    finally:
        stop_all([api.proc, workers.proc], STOP_GRACE_SECONDS)
        stop_all([aws.proc], EMULATOR_GRACE_SECONDS)  # last: it saves its state
        print("fila: stopped", flush=True)


def _wait_healthy(base: str, children: list[Child], stop: StopSignals) -> bool:
    deadline = time.monotonic() + 60
    while not stop.requested and time.monotonic() < deadline:
        if any(c.proc is not None and c.proc.poll() is not None for c in children):
            print("fila: a process exited during start-up", file=sys.stderr)
            return False
        try:
            if requests.get(f"{base}/health", timeout=2).status_code == 200:
                return True
        except requests.RequestException:
            pass
        stop.wait(0.1)
    return False
