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

    pkg = commands.add_parser("package", help="chalice package merged with infra/ (SAM template + zip)")
    pkg.add_argument("--stage", default="dev")
    pkg.add_argument("--out", default=None, help="output folder (default build/<stage>)")
    pkg.set_defaults(func=_package)

    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
