"""moto's server (the same WSGI app `moto_server` runs), served by waitress.

Profiled under load, `moto_server` spent about 16 % of its CPU listing moto's package folder on
every request (`list_of_moto_modules`) and about 19 % in werkzeug's dev server writing unbuffered
responses, and SQS ReceiveMessage checked each message's retention by computing *every* queue
attribute (two passes over the whole queue per message: 260 ms to receive 10 of 500 messages),
each pass building two datetimes per message to ask whether it is visible. Serving the same app
with waitress, listing the folder once, reading the retention period directly and telling
visibility from ``time.time()`` leave the emulator's behaviour unchanged and multiply its
throughput (measured in BENCHMARKS.md).

With a state file it starts from the state saved there and saves its state there when it is
stopped (SIGTERM or SIGINT): see fila.local.snapshot.

    python -m fila.local.moto_server HOST PORT [STATE_FILE]
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from fila.local import snapshot


def main(host: str, port: int, state: Path | None = None) -> None:
    os.environ.setdefault("MOTO_PORT", str(port))
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from waitress import create_server

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # the folder does not change while we run
    _fast_sqs_scans()
    if state is not None and (services := snapshot.load(state)):
        print(f"fila: emulator state restored from {state.name} ({services} services)", flush=True)
    server = create_server(DomainDispatcherApplication(create_backend_app), host=host, port=port,
                           threads=64, ident="moto", max_request_body_size=64 * 1024 * 1024)

    def stop(*_: Any) -> None:
        raise SystemExit(0)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    try:
        server.run()
    finally:
        if state is not None:
            started = time.monotonic()
            size = snapshot.save(state)
            print(f"fila: emulator state saved to {state.name} ({size / 1e6:.1f} MB, "
                  f"{time.monotonic() - started:.2f}s)", flush=True)


def _fast_sqs_scans() -> None:
    """Same rules as moto's, without building every queue attribute or two datetimes per message."""
    import time

    from moto.core.utils import unix_time
    from moto.sqs.models import Message, SQSBackend

    setattr(Message, "visible", property(lambda self: time.time() * 1000 > self.visible_at))  # noqa: B010
    setattr(Message, "delayed", property(lambda self: time.time() * 1000 < self.delayed_until))  # noqa: B010

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > unix_time())

    setattr(SQSBackend, "is_message_valid_based_on_retention_period",  # noqa: B010
            is_message_valid_based_on_retention_period)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) > 3 else None)
