"""The `fila` command line (docs/contract.md, "Command line")."""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from typing import Any
from urllib.parse import quote


def _serve_api(args: argparse.Namespace) -> int:
    from fila.local.signals import StopSignals

    stop = StopSignals()  # before the slow imports: a stop asked for meanwhile is not lost
    from fila.local import chalice_app, gateway

    loaded = chalice_app.load()
    if not stop.requested:
        server = gateway.server(loaded.app, loaded.stage, args.host, args.port)
        threading.Thread(target=server.run, name="serve", daemon=True).start()
        stop.wait()
    return _leave()


def _workers(args: argparse.Namespace) -> int:
    from fila.local.signals import StopSignals

    stop = StopSignals()
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>`: every thread's stack, to see what waits
    from fila.local import chalice_app
    from fila.local.event_sources import StartAbandoned
    from fila.local.workers import Workers, yield_cpu

    yield_cpu()
    try:
        workers = Workers(chalice_app.load(), stopping=lambda: stop.requested)
    except StartAbandoned:  # stopped while SQS did not answer: nothing was started
        return _leave()
    if not stop.requested:
        workers.start()
        stop.wait()
        workers.stop()  # invocations in progress get a few seconds to finish
    return _leave()


def _leave() -> int:
    """Exit now: threads still inside a request or a job are daemons, not worth waiting for (an API
    request cut here is retried by its emitter; a job's message comes back from SQS)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _up(args: argparse.Namespace) -> int:
    from fila.local.stack import up

    return up(port=args.port, fresh=args.fresh)


def _api_url(args: argparse.Namespace) -> str:
    return str(args.url or os.environ.get("FILA_URL") or f"http://127.0.0.1:{os.environ.get('PORT', '8000')}")


def _send(args: argparse.Namespace) -> int:
    """POST signed samples, ``--concurrency`` at a time; stops at the first answer that is not 200."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from fila.admin_client import progress
    from fila.samples import signed_sample

    url = f"{_api_url(args)}/webhooks/{args.source}"
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=max(1, args.concurrency)))
    failed, lock = threading.Event(), threading.Lock()
    done = [0]

    def one(_: int) -> None:
        if failed.is_set():
            return
        event_id, headers, body = signed_sample(args.source, args.type)
        try:
            response = session.post(url, headers=headers, data=body, timeout=30)
        except requests.RequestException as err:
            print(f"fila: cannot reach {url}: {type(err).__name__}", file=sys.stderr)
            failed.set()
            return
        if args.count == 1 or response.status_code != 200:
            print(f"{response.status_code} {args.source} {args.type} {event_id} {response.text}")
        if response.status_code != 200:
            failed.set()
        elif args.count > 1:
            with lock:
                done[0] += 1
                progress(done[0], args.count, f"sending {args.source} {args.type}")

    with ThreadPoolExecutor(max(1, args.concurrency)) as pool:
        list(pool.map(one, range(args.count)))
    return 1 if failed.is_set() else 0


def _admin(args: argparse.Namespace) -> Any:
    from fila.admin_client import Admin

    return Admin(args.url, args.token)


def _show(value: Any) -> None:
    print(json.dumps(value, indent=2))


def _events_show(args: argparse.Namespace) -> int:
    _show(_admin(args).call("GET", f"/events/{quote(args.source, safe='')}/{quote(args.event_id, safe='')}"))
    return 0


def _jobs_list(args: argparse.Namespace) -> int:
    page = _admin(args).call("GET", "/jobs", status=args.status, queue=args.queue, limit=args.limit)
    for job in page["jobs"]:
        error = f"  {job['last_error'][:60]}" if job["last_error"] else ""
        print(f"{job['job_id']:<60} {job['name']:<24} {job['status']:<10} {job['attempts']}{error}")
    if page["next_cursor"]:
        print(f"… more (cursor {page['next_cursor']})", file=sys.stderr)
    return 0


def _jobs_show(args: argparse.Namespace) -> int:
    _show(_admin(args).call("GET", f"/jobs/{quote(args.job_id, safe='')}"))
    return 0


def _jobs_retry(args: argparse.Namespace) -> int:
    job = _admin(args).call("POST", f"/jobs/{quote(args.job_id, safe='')}/retry")
    print(f"{job['job_id']}: {job['status']}")
    return 0


def _dlq_list(args: argparse.Namespace) -> int:
    admin = _admin(args)
    names = [args.queue] if args.queue else [q["name"] for q in admin.call("GET", "/queues")["queues"]]
    for name in names:
        for message in admin.call("GET", f"/queues/{name}/dlq")["messages"]:
            print(f"{name:<12} {message['job_id'] or message['message_id']:<60} {message['reason']}")
    return 0


def _dlq_redrive(args: argparse.Namespace) -> int:
    from fila.admin_client import progress, while_running

    admin = _admin(args)

    def dead() -> int:  # what the DLQ holds (``dead`` counts only failed jobs)
        return int(next(q["dlq_messages"] for q in admin.call("GET", "/queues")["queues"]
                        if q["name"] == args.queue))

    total = dead()
    moved = while_running(lambda: admin.call("POST", f"/queues/{args.queue}/redrive")["moved"],
                          lambda: progress(total - dead(), total, f"redriving {args.queue}"))
    progress(total, total, f"redriving {args.queue}")
    print(f"moved {moved} message(s) back to {args.queue}")
    return 0


def _queue_pause(args: argparse.Namespace) -> int:
    answer = _admin(args).call("POST", f"/queues/{quote(args.queue, safe='')}/{args.action}")
    print(f"{answer['name']}: {'paused' if answer['paused'] else 'consuming'}")
    return 0


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def duration(text: str) -> int:
    """Seconds from ``90``, ``45s``, ``30m``, ``12h``, ``7d`` or ``2w``."""
    number, unit = (text[:-1], text[-1]) if text[-1:] in DURATION_UNITS else (text, "s")
    try:
        seconds = int(number) * DURATION_UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90, 30m, 12h, 7d)") from None
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (it must not be negative)")
    return seconds


def _queue_clean(args: argparse.Namespace) -> int:
    """Calls the API until nothing is left (each call removes a bounded number), showing the count."""
    admin, removed = _admin(args), 0
    while True:
        answer = admin.call("POST", f"/queues/{quote(args.queue, safe='')}/clean", status=args.status,
                            older_than=args.older_than)
        removed += int(answer["removed"])
        sys.stderr.write(f"\rcleaning {args.queue}: {removed} {args.status} job(s) removed")
        sys.stderr.flush()
        if not answer.get("more"):
            break
    sys.stderr.write("\n")
    print(json.dumps({"removed": removed}))
    return 0


def _schedule_run(args: argparse.Namespace) -> int:
    print(_admin(args).call("POST", f"/schedules/{args.name}/run")["run_id"])
    return 0


def _package(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fila.deploy import package

    template = package(args.stage, Path(args.out or f"build/{args.stage}"))
    print(f"fila: packaged {args.stage}: {template}")
    return 0


def _deploy(args: argparse.Namespace) -> int:
    from fila.release import DeployError, deploy, destroy

    try:
        result = (deploy if args.command == "deploy" else destroy)(args.stage)
    except DeployError as err:
        print(f"fila {args.command}: {err}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as err:  # chalice said why, above; run again once it is fixed
        print(f"fila {args.command}: `{' '.join(map(str, err.cmd[-4:]))}` failed (exit {err.returncode})",
              file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    if args.command == "deploy":
        print(f"fila: stage {args.stage} is up; point emitters at {result['webhooks']}")
    else:
        print(f"fila: stage {args.stage} removed; kept (data): {', '.join(result['kept'])}")
    return 0


def _admin_commands(commands: Any) -> None:
    """The commands that call the admin API."""
    def admin_command(parent: Any, name: str, func: Any, help: str) -> argparse.ArgumentParser:
        command: argparse.ArgumentParser = parent.add_parser(name, help=help)
        command.add_argument("--url", help="fila's base URL (default $FILA_URL or the local API)")
        command.add_argument("--token", help="admin token (default $ADMIN_TOKEN or the local one)")
        command.set_defaults(func=func)
        return command

    events = commands.add_parser("events", help="stored events").add_subparsers(dest="action", required=True)
    show = admin_command(events, "show", _events_show, "one event with its jobs")
    show.add_argument("source")
    show.add_argument("event_id")

    jobs = commands.add_parser("jobs", help="jobs").add_subparsers(dest="action", required=True)
    listing = admin_command(jobs, "list", _jobs_list, "newest jobs first")
    listing.add_argument("--status", choices=["waiting", "delayed", "active", "completed", "failed"])
    listing.add_argument("--queue")
    listing.add_argument("--limit", type=int, default=50)
    admin_command(jobs, "show", _jobs_show, "one job: data, options, attempts, result").add_argument("job_id")
    admin_command(jobs, "retry", _jobs_retry, "queue a failed job again").add_argument("job_id")

    dlq = commands.add_parser("dlq", help="dead-letter queues").add_subparsers(dest="action", required=True)
    admin_command(dlq, "list", _dlq_list, "DLQ messages with their reasons").add_argument("queue", nargs="?")
    admin_command(dlq, "redrive", _dlq_redrive, "move a DLQ's messages back").add_argument("queue")

    schedule = commands.add_parser("schedule", help="schedules").add_subparsers(dest="action", required=True)
    admin_command(schedule, "run", _schedule_run, "run a schedule now").add_argument("name")

    lane = commands.add_parser("queue", help="lanes").add_subparsers(dest="action", required=True)
    admin_command(lane, "pause", _queue_pause, "stop consuming a lane (nothing lost)").add_argument("queue")
    admin_command(lane, "resume", _queue_pause, "consume a paused lane again").add_argument("queue")
    clean = admin_command(lane, "clean", _queue_clean, "remove old completed or failed jobs")
    clean.add_argument("queue")
    clean.add_argument("--status", required=True, choices=["completed", "failed"])
    clean.add_argument("--older-than", required=True, type=duration, help="age: 90, 30m, 12h, 7d, 2w")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("FILA_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="fila", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run the whole local stack (what `make run` calls)")
    up.add_argument("--port", type=int, default=None, help="API port (default $PORT or 8000)")
    up.add_argument("--fresh", action="store_true",
                    help="start the embedded emulator empty (forget the state saved by the last stop)")
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
    send.add_argument("--concurrency", type=int, default=1, help="requests in flight at once (default 1)")
    send.add_argument("--url", default=None, help="API base URL (default $FILA_URL or http://127.0.0.1:$PORT)")
    send.set_defaults(func=_send)

    _admin_commands(commands)

    pkg = commands.add_parser("package", help="chalice package merged with infra/ (SAM template + zip)")
    pkg.add_argument("--stage", default="dev")
    pkg.add_argument("--out", default=None, help="output folder (default build/<stage>)")
    pkg.set_defaults(func=_package)

    for name, text in (("deploy", "deploy a stage: infra stack, chalice deploy, mapping settings"),
                       ("destroy", "remove what deploy made; keeps the tables and the bucket")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--stage", required=True)
        command.set_defaults(func=_deploy)

    args = parser.parse_args(argv)
    from fila.admin_client import AdminError

    try:
        result: int = args.func(args)
    except AdminError as err:
        print(f"fila: {err}", file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
