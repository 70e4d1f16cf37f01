"""moto's server (the same WSGI app `moto_server` runs), served by waitress, tuned and crash-safe.

    python -m fila.local.moto_server HOST PORT [STATE_FILE]

- Speed: the patches of fila.local.moto_patches (each says which moto function it replaces and why).
- State: with a state file it starts from the state saved there, snapshots it while it changes
  (fila.local.snapshot) and once more when it is stopped (SIGTERM or SIGINT).
- Stopping: the signal handler only records the signal (fila.local.signals); the main thread, which
  does nothing but wait for it, closes the gate, saves and exits. Nothing here can hang a stop.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fila.local.gate import GATE, Gate
from fila.local.signals import StopSignals

CONTROL = "/_fila/"
# Operations that never change state (X-Amz-Target's suffix); ReceiveMessage is gated where it takes.
READS = frozenset({
    "GetItem", "BatchGetItem", "Query", "Scan", "DescribeTable", "ListTables", "DescribeTimeToLive",
    "GetQueueUrl", "GetQueueAttributes", "ListQueues", "ListQueueTags", "ListDeadLetterSourceQueues",
    "GetParameter", "GetParameters", "GetParametersByPath", "DescribeParameters",
})
UNGATED = frozenset({"ReceiveMessage"})
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def operation(environ: dict[str, Any]) -> str | None:
    """The API operation of a JSON-protocol request (DynamoDB, SQS, SSM…); None for the others."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    return target.rpartition(".")[2] or None


class Gated:
    """moto's WSGI app behind the gate, plus ``/_fila/*``: the emulator's own status."""

    def __init__(self, app: Callable[..., Iterable[bytes]], gate: Gate,
                 status: Callable[[], dict[str, Any]]) -> None:
        self.app, self.gate, self.status = app, gate, status

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(CONTROL):
            body = json.dumps(self.status()).encode()
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        op = operation(environ)
        if op in UNGATED:
            return self.app(environ, start_response)
        reads = op in READS or (op is None and environ.get("REQUEST_METHOD") in ("GET", "HEAD"))
        with self.gate.shared():
            if not reads:
                self.gate.changed()
            # moto builds the whole response inside the call: the gate covers every change it makes
            return list(self.app(environ, start_response))


def main(host: str, port: int, state: Path | None = None) -> None:
    stop = StopSignals()  # first: a stop asked for during the slow imports below is not lost
    os.environ.setdefault("MOTO_PORT", str(port))
    from fila.local import fast_sqs, moto_patches, snapshot

    moto_patches.apply()
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from waitress import create_server

    if stop.requested:
        return  # nothing was loaded, so nothing may be saved over the last state
    if state is not None and (services := snapshot.load(state)):
        released = fast_sqs.release_held()
        print(f"fila: emulator state restored from {state.name} ({services} services; {released} messages "
              "that consumers held before the restart are visible again)", flush=True)
    snapshots = snapshot.Snapshotter(state, GATE) if state is not None else None
    app = Gated(DomainDispatcherApplication(create_backend_app), GATE,
                lambda: {"snapshots": snapshots.stats.as_dict() if snapshots else None})
    server = create_server(app, host=host, port=port, threads=64, ident="moto",
                           max_request_body_size=64 * 1024 * 1024)
    threading.Thread(target=server.run, name="serve", daemon=True).start()
    if snapshots is not None:
        snapshots.start()
    stop.wait()
    if snapshots is not None:
        snapshots.stop()
        size = snapshots.final()
        print(f"fila: emulator state saved to {snapshots.path.name} ({size / 1e6:.1f} MB)", flush=True)
    sys.stdout.flush()
    os._exit(0)  # the serving threads are daemons mid-request: leave without waiting for them


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) > 3 else None)
