"""The `fila` command line (contract §5)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading


def _serve_api(args: argparse.Namespace) -> int:
    from fila.local import chalice_app, gateway

    loaded = chalice_app.load()
    gateway.serve(loaded.app, loaded.stage, args.host, args.port)
    return 0


def _workers(args: argparse.Namespace) -> int:
    from fila.local import chalice_app
    from fila.local.workers import Workers

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    workers = Workers(chalice_app.load())
    workers.start()
    stop.wait()
    workers.stop()
    return 0


def _up(args: argparse.Namespace) -> int:
    from fila.local.stack import up

    return up(port=args.port)


def _api_url(args: argparse.Namespace) -> str:
    return str(args.url or os.environ.get("FILA_URL") or f"http://127.0.0.1:{os.environ.get('PORT', '8000')}")


def _send(args: argparse.Namespace) -> int:
    import requests

    from fila.samples import signed_sample

    url = f"{_api_url(args)}/webhooks/{args.source}"
    for _ in range(args.count):
        event_id, headers, body = signed_sample(args.source, args.type)
        response = requests.post(url, headers=headers, data=body, timeout=10)
        print(f"{response.status_code} {args.source} {args.type} {event_id} {response.text}")
        if response.status_code != 200:
            return 1
    return 0


def _package(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fila.deploy import package

    template = package(args.stage, Path(args.out or f"build/{args.stage}"))
    print(f"fila: packaged {args.stage}: {template}")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("FILA_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="fila", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run the whole local stack (what `make run` calls)")
    up.add_argument("--port", type=int, default=None, help="API port (default $PORT or 8000)")
    up.set_defaults(func=_up)

    api = commands.add_parser("serve-api", help="serve the Chalice app over HTTP (part of `fila up`)")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.set_defaults(func=_serve_api)

    workers = commands.add_parser("workers", help="SQS pollers, schedules, TTL (part of `fila up`)")
    workers.set_defaults(func=_workers)

    send = commands.add_parser("send", help="send a realistic signed sample event (like `stripe trigger`)")
    send.add_argument("source", choices=["stripe", "github", "shopify", "standard"])
    send.add_argument("type", help="event type, e.g. payment_intent.succeeded, issues.opened, orders/create")
    send.add_argument("--count", type=int, default=1)
    send.add_argument("--url", default=None, help="API base URL (default $FILA_URL or http://127.0.0.1:$PORT)")
    send.set_defaults(func=_send)

    pkg = commands.add_parser("package", help="chalice package merged with infra/ (SAM template + zip)")
    pkg.add_argument("--stage", default="dev")
    pkg.add_argument("--out", default=None, help="output folder (default build/<stage>)")
    pkg.set_defaults(func=_package)

    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
