"""The embedded AWS emulator: moto's server app, served by waitress, tuned, split and crash-safe.

    python -m fila.local.moto_server HOST PORT [--state-dir DIR] [--role main|all]

- One address, several processes (role ``main``): SQS and DynamoDB, the busy services, each run in a
  process of their own (role ``sqs``, ``dynamodb``) so the emulator uses every core; the main process
  serves the rest and forwards their requests to them (fila.local.router), so every client that
  knows only this address still works. ``GET /_fila/status`` names the direct endpoints.
- Speed: the patches of fila.local.moto_patches (each names the moto function it replaces and why);
  DynamoDB's and SQS's JSON calls straight to their handler (fila.local.fast_dispatch); the
  siblings served by fila.local.plain_http, the main process by waitress.
- State: with a state folder, every process starts from the last snapshot and the main process keeps
  snapshotting all of them at one cut while the state changes, and once more when stopped
  (fila.local.snapshot).
- Stopping: the signal handler only records the signal (fila.local.signals); the main thread, which
  does nothing but wait for it, saves and exits. A sibling exits when its parent is gone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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


@dataclass
class Sibling:
    """A service process forked by the main one (moto already imported: it starts in no time)."""

    role: str
    pid: int
    url: str

    def alive(self) -> bool:
        return os.waitpid(self.pid, os.WNOHANG) == (0, 0)

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def wait(self, deadline: float) -> bool:
        """Whether it exited by ``deadline`` (monotonic)."""
        while True:
            try:
                if os.waitpid(self.pid, os.WNOHANG) != (0, 0):
                    return True
            except ChildProcessError:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


def stop_siblings(siblings: Iterable[Sibling], grace: float = 2.0) -> None:
    """SIGTERM them all at once (they save nothing: the main process snapshots them), SIGKILL what is
    left after ``grace``."""
    running = list(siblings)
    for sibling in running:
        sibling.signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for sibling in running:
        if not sibling.wait(deadline):
            sibling.signal(signal.SIGKILL)


def _fork_siblings(host: str, files: dict[str, Path], stop: StopSignals) -> dict[str, Sibling]:
    """SQS and DynamoDB in processes of their own, each from its last snapshot; once they listen.
    Forked before this process starts a thread, so each child is a clean copy of it."""
    from fila.local.emulator import StartAborted, free_port, listening

    siblings = {}
    for role in SIBLINGS:
        port = free_port()
        pid = os.fork()
        if pid == 0:
            os.setsid()  # its own process group, as a spawned process would have
            try:
                serve(role, host, port, StopSignals(), restore=files.get(role))
            finally:
                os._exit(0)
        siblings[role] = Sibling(role, pid, f"http://{host}:{port}")
    deadline = time.monotonic() + 60
    try:
        for sibling in siblings.values():
            while not listening(host, int(sibling.url.rsplit(":", 1)[1])):
                if stop.requested:
                    raise StartAborted("stopped while the emulator started")
                if not sibling.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"the emulator's {sibling.role} process did not start")
                time.sleep(0.02)
    except (StartAborted, RuntimeError):
        stop_siblings(siblings.values(), grace=0)
        raise
    return siblings


def _exit_with_parent(parent: int) -> None:
    """A sibling must not outlive the main process (its port would stay taken)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _prepare() -> None:
    """moto, tuned and gated (once per process tree: forked siblings inherit it)."""
    from fila.local import gate, moto_patches

    moto_patches.apply()
    gate.install()


def serve(role: str, host: str, port: int, stop: StopSignals, state_dir: Path | None = None,
          restore: Path | None = None) -> None:
    """Serve one emulator process until ``stop``; the main process (``role`` main) forks its siblings
    first, snapshots them all while it serves, and stops them when it stops."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from waitress import create_server

    from fila.local import dynamodb_ttl, fast_dispatch, fast_sqs, plain_http, snapshot
    from fila.local.ports import OPEN_DOORS
    from fila.local.router import Router

    if role in SIBLINGS:
        threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    store = snapshot.Store(state_dir) if state_dir else None
    files = store.files() if store else ({role: restore} if restore else {})
    own = "all" if role == "all" else role
    siblings: dict[str, Sibling] = {}
    if role == "main" and not stop.requested:
        siblings = _fork_siblings(host, files, stop)  # before this process restores anything of its own
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
    if stop.requested:
        stop_siblings(siblings.values(), grace=0)
        return  # nothing was served, so nothing may be saved over the last state
    if own in ("dynamodb", "all"):
        dynamodb_ttl.start()
    coordinator: snapshot.Coordinator | None = None
    if store is not None:
        members: dict[str, Any] = {own: LocalMember(GATE)}
        members.update({r: RemoteMember(s.url) for r, s in siblings.items()})
        coordinator = snapshot.Coordinator(store, members)

    def status() -> dict[str, Any]:
        return {"role": role, "endpoints": {r: s.url for r, s in siblings.items()},
                "deletes_expired_items": True,  # fila.local.dynamodb_ttl
                "snapshots": coordinator.stats.as_dict() if coordinator else None}

    app: Any = Emulator(fast_dispatch.Direct(DomainDispatcherApplication(create_backend_app)), GATE, status)
    if siblings:
        app = Router(app, {r: s.url for r, s in siblings.items()})
    if role in SIBLINGS:  # SDK clients only (fila's processes, the main process's router)
        server: Any = plain_http.Server(app, host, port, connection_limit=OPEN_DOORS["connection_limit"])
    else:  # whatever a user points at the endpoint
        server = create_server(app, host=host, port=port, threads=64, ident="moto",
                               max_request_body_size=64 * 1024 * 1024, **OPEN_DOORS)
    threading.Thread(target=server.run, name="serve", daemon=True).start()
    if coordinator is not None:
        coordinator.start()
    stop.wait()
    if coordinator is not None and coordinator.final():
        print(f"fila: emulator state saved to {store.folder if store else '?'} "
              f"({coordinator.stats.last_bytes / 1e6:.1f} MB)", flush=True)
    stop_siblings(siblings.values())
    sys.stdout.flush()
    os._exit(0)  # the serving threads are daemons mid-request: leave without waiting for them


def main(argv: list[str] | None = None) -> None:
    stop = StopSignals()  # first: a stop asked for during the slow imports below is not lost
    parser = argparse.ArgumentParser(prog="fila.local.moto_server")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--role", choices=("main", "all"), default="main")
    parser.add_argument("--state-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    _prepare()
    serve(args.role, args.host, args.port, stop, state_dir=args.state_dir)


if __name__ == "__main__":
    main()
