"""The embedded AWS emulator: moto's server app, served by waitress, tuned, split and crash-safe.

    python -m fila.local.moto_server HOST PORT [--state-dir DIR] [--role main|all]

- One address, several processes (role ``main``): SQS and DynamoDB, the busy services, each run in a
  process of their own (role ``sqs``, ``dynamodb``) so the emulator uses every core; the main process
  serves the rest and forwards their requests to them (fila.local.router), so every client that
  knows only this address still works. ``GET /_fila/status`` names the direct endpoints.
- Speed: the patches of fila.local.moto_patches (each names the moto function it replaces and why).
- State: with a state folder, every process starts from the last snapshot and the main process keeps
  snapshotting all of them at one cut while the state changes, and once more when stopped
  (fila.local.snapshot).
- Stopping: the signal handler only records the signal (fila.local.signals); the main thread, which
  does nothing but wait for it, saves and exits. A sibling exits when its parent is gone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fila.local.gate import GATE, Gate
from fila.local.signals import StopSignals

CONTROL = "/_fila/"
SIBLINGS = ("sqs", "dynamodb")
StartResponse = Callable[..., Any]


class LocalMember:
    """This process as a snapshot member: its gate, its forks."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self._thaw_timer: threading.Timer | None = None
        self.children: dict[int, Any] = {}

    def changes(self) -> int:
        return self.gate.changes

    def freeze(self, timeout: float, hold: float | None = None) -> bool:
        """Close the gate; ``hold``: reopen it by itself after that long (a coordinator that died)."""
        if not self.gate.freeze(timeout):
            return False
        if hold is not None:
            self._thaw_timer = threading.Timer(hold, self.gate.thaw)
            self._thaw_timer.daemon = True
            self._thaw_timer.start()
        return True

    def thaw(self) -> None:
        if self._thaw_timer is not None:
            self._thaw_timer.cancel()
        self.gate.thaw()

    def fork(self, path: Path) -> Any:
        from fila.local import snapshot

        try:
            return snapshot.fork_writer(path)
        finally:
            self.thaw()

    def wait(self, handle: Any) -> dict[str, Any]:
        from fila.local import snapshot

        return snapshot.reap(handle)


class RemoteMember:
    """A sibling process as a snapshot member, through its ``/_fila/`` endpoints."""

    def __init__(self, base: str) -> None:
        import urllib3

        self.base = base
        self.http = urllib3.PoolManager(maxsize=4, retries=False, timeout=urllib3.Timeout(connect=1, read=30))

    def _call(self, method: str, action: str, **fields: Any) -> dict[str, Any]:
        response = self.http.request(method, f"{self.base}{CONTROL}{action}?{urlencode(fields)}")
        answer: dict[str, Any] = json.loads(response.data)
        return answer

    def changes(self) -> int:
        return int(self._call("GET", "status")["changes"])

    def freeze(self, timeout: float) -> bool:
        return bool(self._call("POST", "freeze", timeout=str(timeout))["frozen"])

    def thaw(self) -> None:
        self._call("POST", "thaw")

    def fork(self, path: Path) -> Any:
        return self._call("POST", "fork", path=str(path))["child"]

    def wait(self, handle: Any) -> dict[str, Any]:
        return self._call("POST", "wait", child=str(handle))


class Emulator:
    """moto's WSGI app (its requests pass the gate: fila.local.gate.install), plus ``/_fila/*``: status,
    and snapshot control for the main process (freeze, fork, thaw, wait)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], gate: Gate,
                 status: Callable[[], dict[str, Any]]) -> None:
        self.app, self.gate, self.status = app, gate, status
        self.member = LocalMember(gate)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL):
            return self._control(path[len(CONTROL):], environ, start_response)
        return self.app(environ, start_response)

    def _control(self, action: str, environ: dict[str, Any],
                 start_response: StartResponse) -> Iterable[bytes]:
        form = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        if action == "status":
            answer: dict[str, Any] = {"changes": self.gate.changes, **self.status()}
        elif action == "freeze":
            answer = {"frozen": self.member.freeze(float(form.get("timeout", "0.5")), hold=5.0)}
        elif action == "thaw":
            self.member.thaw()
            answer = {"thawed": True}
        elif action == "fork":
            child = self.member.fork(Path(form["path"]))
            self.member.children[child.pid] = child
            answer = {"child": child.pid}
        elif action == "wait":
            answer = self.member.wait(self.member.children.pop(int(form["child"])))
        else:
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"error": "unknown control action"}']
        body = json.dumps(answer).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def _spawn_siblings(host: str, files: dict[str, Path], stop: StopSignals
                    ) -> dict[str, tuple[subprocess.Popen[bytes], str]]:
    """SQS and DynamoDB in processes of their own, each from its last snapshot; once they listen."""
    from fila.local.emulator import StartAborted, free_port, host_port, wait_listening

    siblings = {}
    for role in SIBLINGS:
        port = free_port()
        restore = ["--restore", str(files[role])] if role in files else []
        proc = subprocess.Popen([sys.executable, "-m", "fila.local.moto_server", host, str(port),
                                 "--role", role, *restore], start_new_session=True)
        siblings[role] = (proc, f"http://{host}:{port}")
    try:
        for proc, url in siblings.values():
            wait_listening(*host_port(url), timeout=60, proc=proc, aborted=lambda: stop.requested)
    except (StartAborted, RuntimeError, TimeoutError):
        for proc, _ in siblings.values():
            proc.kill()
        raise
    return siblings


def _exit_with_parent(parent: int) -> None:
    """A sibling must not outlive the main process (its port would stay taken)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    stop = StopSignals()  # first: a stop asked for during the slow imports below is not lost
    parser = argparse.ArgumentParser(prog="fila.local.moto_server")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--role", choices=("main", "all", *SIBLINGS), default="main")
    parser.add_argument("--state-dir", type=Path, default=None)
    parser.add_argument("--restore", type=Path, default=None, help="(siblings) the snapshot to start from")
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    from fila.local import fast_sqs, gate, moto_patches, snapshot

    moto_patches.apply()
    gate.install()
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from waitress import create_server

    from fila.local.router import Router

    if args.role in SIBLINGS:
        threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    store = snapshot.Store(args.state_dir) if args.state_dir else None
    files = store.files() if store else {}
    if args.role in SIBLINGS and args.restore:
        files = {args.role: args.restore}
    own = "all" if args.role == "all" else args.role
    try:
        restored = snapshot.load(files[own]) if own in files and not stop.requested else 0
    except Exception as err:  # another moto version, a truncated file: keep it aside, start empty
        from moto.core.base_backend import BackendDict

        BackendDict.reset()
        if store is None:
            raise
        store.set_aside(f"{type(err).__name__}: {err}")
        files, restored = {}, 0
    if restored:
        released = fast_sqs.release_held()
        print(f"fila: emulator state restored ({own}, {restored} services"
              + (f"; {released} messages that consumers held before the restart are visible again)"
                 if own in ("sqs", "all") else ")"), flush=True)
    siblings: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    if args.role == "main" and not stop.requested:
        siblings = _spawn_siblings(args.host, files, stop)
    if stop.requested:
        for proc, _ in siblings.values():
            proc.kill()
        return  # nothing was served, so nothing may be saved over the last state
    coordinator: snapshot.Coordinator | None = None
    if store is not None:
        members: dict[str, Any] = {own: LocalMember(GATE)}
        members.update({role: RemoteMember(url) for role, (_, url) in siblings.items()})
        coordinator = snapshot.Coordinator(store, members)

    def status() -> dict[str, Any]:
        return {"role": args.role, "endpoints": {role: url for role, (_, url) in siblings.items()},
                "snapshots": coordinator.stats.as_dict() if coordinator else None}

    app: Any = Emulator(DomainDispatcherApplication(create_backend_app), GATE, status)
    if siblings:
        app = Router(app, {role: url for role, (_, url) in siblings.items()})
    server = create_server(app, host=args.host, port=args.port, threads=64, ident="moto",
                           max_request_body_size=64 * 1024 * 1024)
    threading.Thread(target=server.run, name="serve", daemon=True).start()
    if coordinator is not None:
        coordinator.start()
    stop.wait()
    if coordinator is not None and coordinator.final():
        print(f"fila: emulator state saved to {store.folder if store else '?'} "
              f"({coordinator.stats.last_bytes / 1e6:.1f} MB)", flush=True)
    for proc, _ in siblings.values():
        proc.terminate()
    for proc, _ in siblings.values():
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
    sys.stdout.flush()
    os._exit(0)  # the serving threads are daemons mid-request: leave without waiting for them


if __name__ == "__main__":
    main()
