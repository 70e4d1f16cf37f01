"""Stopping the stack the way CI runners, `timeout` and systemd do, over and over.

Each round starts `setsid make run` on free ports with an empty state folder, then sends one to three
signals (SIGINT or SIGTERM, to the whole process group as a runner does, or to `fila up` alone) at
random moments 0-10 s after the start, and checks within 10 s of the first signal: no process of the
stack is left, both ports are free, and the emulator's state was saved if the emulator had started.

    .venv/bin/python -m bench.stop_stress --rounds 30 --seed 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fila import ROOT
from fila.local.emulator import free_port, listening
from fila.local.running import alive, descendants

DEADLINE_SECONDS = 10.0


@dataclass
class Round:
    number: int
    signals: list[tuple[float, str, str]]  # (seconds after start, signal, "group" | "fila up")
    stopped_after: float | None = None  # seconds from the first signal until nothing was left
    emulator_started: bool = False
    state_saved: bool = False
    problems: list[str] = field(default_factory=list)


def plan(rng: random.Random, number: int) -> Round:
    moments = sorted(rng.uniform(0, 10) for _ in range(rng.randint(1, 3)))
    return Round(number, [(round(t, 2), rng.choice(["SIGINT", "SIGTERM"]), rng.choice(["group", "fila up"]))
                          for t in moments])


def run_round(spec: Round) -> Round:
    state = Path(tempfile.mkdtemp(prefix="fila-stop-"))
    port, aws_port = free_port(), free_port()
    env = {**os.environ, "PORT": str(port), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{aws_port}",
           "FILA_STATE_DIR": str(state), "POWERTOOLS_LOG_LEVEL": "WARNING"}
    log = state / "make-run.log"
    with open(log, "wb") as out:
        make = subprocess.Popen(["make", "-s", "run"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    started, seen = time.monotonic(), {make.pid}  # every process of the stack ever seen
    seen_up: set[int] = set()  # every `fila up` process seen
    first: float | None = None
    for at, name, target in spec.signals:
        while time.monotonic() - started < at:
            seen |= descendants(*seen)
            seen_up.update(_fila_up(seen))
            time.sleep(0.02)
        seen |= descendants(*seen)
        sig = signal.Signals[name]
        if target == "group":
            _quietly(os.killpg, make.pid, sig)
        else:
            targets = _fila_up(seen)
            # make may not have exec'd it yet (a loaded machine): a signal for `fila up` waits for it,
            # and goes to no one only once it has exited (or make did, before starting it)
            while not targets and not seen_up and make.poll() is None and time.monotonic() - started < 30:
                time.sleep(0.02)
                seen |= descendants(*seen)
                targets = _fila_up(seen)
            if not targets and not seen_up and make.poll() is None:
                spec.problems.append("no `fila up` process to signal 30 s after the start")
            seen_up.update(targets)
            for pid in targets:
                _quietly(os.kill, pid, sig)
        first = first or time.monotonic()
    assert first is not None
    while time.monotonic() - first < DEADLINE_SECONDS + 5:
        seen |= descendants(*seen)
        left = {pid for pid in seen if alive(pid)}
        if not left and not listening("127.0.0.1", port) and not listening("127.0.0.1", aws_port):
            spec.stopped_after = round(time.monotonic() - first, 2)
            break
        time.sleep(0.05)
    output = log.read_text(errors="replace")
    spec.emulator_started = "started moto's server there" in output
    spec.state_saved = (state / "emulator" / "manifest.json").exists() and "emulator state saved" in output
    if spec.stopped_after is None or spec.stopped_after > DEADLINE_SECONDS:
        stuck = sorted(pid for pid in seen if alive(pid))
        spec.problems.append(f"still running {DEADLINE_SECONDS:.0f} s after the first signal: {stuck}")
        for pid in stuck:
            _quietly(os.kill, pid, signal.SIGKILL)
    if spec.emulator_started and not spec.state_saved:
        spec.problems.append("the emulator had started but its state was not saved")
    if spec.problems:
        spec.problems.append("output:\n" + output[-3000:])
    return spec


def _fila_up(pids: set[int]) -> list[int]:
    found = []
    for pid in pids:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"fila up" in command or b"fila.cli up" in command:
            found.append(pid)
    return found


def _quietly(kill: Callable[[int, int], None], pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        kill(pid, sig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    print(f"stop stress: {args.rounds} rounds, seed {seed}; each starts from an empty state folder", flush=True)
    rng = random.Random(seed)
    rounds = []
    for n in range(1, args.rounds + 1):
        result = run_round(plan(rng, n))
        rounds.append(result)
        verdict = "ok" if not result.problems else "FAILED"
        print(f"round {n:>2}: {result.signals} -> stopped after {result.stopped_after} s, emulator started "
              f"{result.emulator_started}, saved {result.state_saved}: {verdict}", flush=True)
        for problem in result.problems:
            print("   ", problem)
    failed = [r for r in rounds if r.problems]
    stops = sorted(r.stopped_after for r in rounds if r.stopped_after is not None)
    print(json.dumps({"seed": seed, "rounds": len(rounds), "failed": len(failed),
                      "stop_seconds_p50": stops[len(stops) // 2] if stops else None,
                      "stop_seconds_max": stops[-1] if stops else None}))
    out = ROOT / "bench" / "results" / f"stop-stress-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"seed": seed, "rounds": [asdict(r) for r in rounds]}, indent=1))
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
