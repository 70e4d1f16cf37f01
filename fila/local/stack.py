"""`fila up`: the whole local stack in one command, and everything it started stopped on Ctrl-C.

Processes: the AWS emulator (moto's server, unless an endpoint already listens), the API (waitress
+ Chalice) and the workers (SQS pollers, schedules, TTL). Each child is its own process group, so
the stack stops them in order: API and workers first, the emulator last, all within 10 s. An API
or workers process that dies is started again (unless it keeps dying within seconds). The
emulator it started saves its state as it stops and restores it at the next start
(fila.local.snapshot), so acknowledged events survive a restart; ``--fresh`` starts empty.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import requests

from chalicelib.credentials import secrets
from fila.local import emulator
from fila.local.provision import provision

STOP_GRACE_SECONDS = 4.0
EMULATOR_GRACE_SECONDS = 5.0  # it saves its state before it exits
CRASH_LOOP_SECONDS = 5.0  # a process that dies this soon after its start,
CRASH_LOOP_DEATHS = 3  # this many times in a row, is crash-looping: the stack stops


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "fila.cli", *args], start_new_session=True)


def _stop(procs: list[subprocess.Popen[bytes] | None], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM them all at once, SIGKILL what is left after ``grace`` (one grace for all: the stack
    must be down within 10 s)."""
    live = [p for p in procs if p is not None and p.poll() is None]
    for proc in live:
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in live:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def up(host: str = "127.0.0.1", port: int | None = None, fresh: bool = False) -> int:
    port = port or int(os.environ.get("PORT", "8000"))
    os.environ["PORT"] = str(port)  # the fake CRM/Slack defaults live beside the API
    endpoint = emulator.endpoint()
    os.environ.update(emulator.aws_env(endpoint))
    os.environ.setdefault("FILA_STAGE", "local")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    print(f"fila: AWS endpoint {endpoint}", flush=True)
    state = emulator.state_file()
    if fresh and state is not None:
        state.unlink(missing_ok=True)
    moto = emulator.start_moto(endpoint, log=None, state=state)
    print("fila: started moto's server there" if moto else "fila: using what already listens there",
          flush=True)
    children: list[subprocess.Popen[bytes]] = []
    try:
        provision()
        commands = {"API": ("serve-api", "--host", host, "--port", str(port)), "workers": ("workers",)}
        children = [_spawn(*command) for command in commands.values()]
        base = f"http://{host}:{port}"
        if not _wait_healthy(base, children, stop):
            return 1
        token = secrets("ADMIN_TOKEN")[0] if os.environ["FILA_STAGE"] == "local" else "(from SSM)"
        print(f"\nfila is up ({os.environ['FILA_STAGE']} stage)\n"
              f"  API        {base}\n  webhooks   {base}/webhooks/{{stripe,github,shopify,standard}}\n"
              f"  dashboard  {base}/admin\n  admin token {token}\n  AWS        {endpoint}\n"
              "Ctrl-C stops everything.", flush=True)
        started, quick_deaths = [time.monotonic()] * len(children), [0] * len(children)
        while not stop.wait(0.5):
            for i, (name, command) in enumerate(commands.items()):
                if children[i].poll() is None:
                    continue
                quick = time.monotonic() - started[i] < CRASH_LOOP_SECONDS
                quick_deaths[i] = quick_deaths[i] + 1 if quick else 0
                if quick_deaths[i] >= CRASH_LOOP_DEATHS:
                    print(f"fila: the {name} process keeps exiting; stopping", file=sys.stderr)
                    return 1
                # as Lambda replaces a crashed sandbox: what it held comes back from SQS
                print(f"fila: the {name} process exited ({children[i].returncode}); starting a new one",
                      file=sys.stderr, flush=True)
                children[i], started[i] = _spawn(*command), time.monotonic()
        return 0
    finally:
        _stop(list(children))  # API and workers first, then the emulator, which saves its state
        _stop([moto], EMULATOR_GRACE_SECONDS)
        print("fila: stopped", flush=True)


def _wait_healthy(base: str, children: list[subprocess.Popen[bytes]], stop: threading.Event) -> bool:
    deadline = time.monotonic() + 60
    while not stop.is_set() and time.monotonic() < deadline:
        if any(c.poll() is not None for c in children):
            print("fila: a process exited during start-up", file=sys.stderr)
            return False
        try:
            if requests.get(f"{base}/health", timeout=2).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.1)
    return False
