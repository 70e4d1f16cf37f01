"""Ack-path benchmark: fila's local stack next to the Bull + Redis seed system, in one run.

    .venv/bin/python bench/ack.py [--requests N] [--sustain-rate R] [--sustain-seconds S] [--no-baseline]

For fila: a fresh `fila up` on free ports (its own moto server), warm-up, then closed-loop levels
at client concurrency 1/16/64 (bench/loadgen.mjs: Node's fetch, keep-alive), an open-loop run at a
fixed rate with the queue depth sampled every 0.5 s (the stack's own consumers drain it), the
app's CPU per webhook without AWS calls (bench/app_cpu.py), and the import cost (bench/import_cost.py).
The seed system runs in the same bench run via its own run.sh (scenario noop), from a temporary
copy of the seed system (``FILA_SEED_DIR``: a checkout of the Bull + Redis baseline). Results: bench/results/ack-<time>.json, and a Markdown summary on
stdout for BENCHMARKS.md. Only 127.0.0.1 is ever contacted; every loop is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import app_cpu, import_cost  # noqa: E402
from chalicelib.resources import lanes  # noqa: E402
from fila.local.running import Stack  # noqa: E402

LEVELS = (1, 16, 64)


def loadgen(*args: object) -> dict[str, Any]:
    out = subprocess.run(["node", str(ROOT / "bench" / "loadgen.mjs"), *map(str, args)],
                         capture_output=True, text=True, check=True, timeout=600)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


class DepthSampler:
    """Visible + in-flight messages over every lane, every 0.5 s, while a run goes on."""

    def __init__(self, endpoint: str) -> None:
        self.sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1",
                                aws_access_key_id="testing", aws_secret_access_key="testing")
        self.urls = [self.sqs.get_queue_url(QueueName=f"fila-local-{q}")["QueueUrl"] for q in lanes()]
        self.samples: list[tuple[float, int]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def depth(self) -> int:
        total = 0
        for url in self.urls:
            a = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            total += int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])
        return total

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self.stopping.wait(0.5):
            self.samples.append((round(time.monotonic() - t0, 1), self.depth()))

    def __enter__(self) -> DepthSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(5)

    def summary(self) -> dict[str, Any]:
        depths = [d for _, d in self.samples]
        return {"max": max(depths, default=0), "last": depths[-1] if depths else 0,
                "mean": round(sum(depths) / len(depths), 1) if depths else 0, "samples": len(depths)}

    def drain_seconds(self, timeout: float = 120) -> float | None:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.depth() == 0:
                return round(time.monotonic() - started, 1)
            time.sleep(0.25)
        return None


def fila_run(requests: int, rate: int, seconds: int) -> dict[str, Any]:
    stack = Stack(POWERTOOLS_LOG_LEVEL="INFO").start()
    url = stack.base + "/webhooks/stripe"
    sampler_endpoint = stack.aws
    out: dict[str, Any] = {"levels": []}
    try:
        loadgen("closed", url, 16, 1000, 60)  # warm-up, not reported
        for concurrency in LEVELS:
            with DepthSampler(sampler_endpoint) as depth:
                level = loadgen("closed", url, concurrency, requests, 60)
            level["queue_depth"] = depth.summary()
            level["drain_after_s"] = depth.drain_seconds()
            out["levels"].append(level)
            print(f"fila c={concurrency}: {level['rps']:.0f} req/s, p99 {level['latency_ms']['p99']} ms", flush=True)
        with DepthSampler(sampler_endpoint) as depth:
            sustained = loadgen("open", url, rate, seconds, 512)
        sustained["queue_depth"] = depth.summary()
        sustained["queue_depth_series"] = depth.samples[:: max(1, len(depth.samples) // 30)]
        sustained["drain_after_s"] = depth.drain_seconds()
        out["sustained"] = sustained
        print(f"fila sustained {rate}/s target: {sustained['rps']:.0f} ok/s, depth max {sustained['queue_depth']['max']}",
              flush=True)
    finally:
        stack.stop()
    return out


def bull_run(requests: int, scenarios: str = "noop") -> dict[str, Any] | None:
    """The seed system's own run.sh, from a temporary copy; its result.json per scenario."""
    seed = os.environ.get("FILA_SEED_DIR")
    if not seed or not Path(seed).exists():
        print("no seed system to compare with: set FILA_SEED_DIR to a checkout of it", file=sys.stderr)
        return None
    anchor = Path(seed)
    work = Path(tempfile.mkdtemp(prefix="bull-")) / "bull"
    shutil.copytree(anchor, work)
    for f in work.rglob("*"):
        f.chmod(f.stat().st_mode | 0o200)
    env = {**os.environ, "SCENARIOS": scenarios, "REQUESTS": str(requests), "WARMUP": "1000",
           "RESULTS_MD": str(work / "RESULTS.local.md")}
    subprocess.run(["bash", "run.sh"], cwd=work, env=env, check=True, timeout=1800,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {path.parent.name: json.loads(path.read_text()) for path in work.glob("results/run-*/*/result.json")}


def bull_levels(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    if not raw or "noop" not in raw:
        return None
    return {"levels": [{"concurrency": lv["concurrency"], "rps": lv["rps"], "latency_ms": lv["ackLatencyMs"],
                        "processed_per_s": lv["processedPerS"]} for lv in raw["noop"]["levels"]]}


def markdown(result: dict[str, Any]) -> str:
    bull = {lv["concurrency"]: lv for lv in (result.get("bull") or {}).get("levels", [])}
    rows = ["| client conc. | fila req/s | fila p50 / p95 / p99 ms | queue depth max | Bull req/s | Bull p50 / p95 / p99 ms | fila/Bull req/s | fila/Bull p99 |",
            "|---|---|---|---|---|---|---|---|"]
    for lv in result["fila"]["levels"]:
        b = bull.get(lv["concurrency"])
        lat = lv["latency_ms"]
        bl = b["latency_ms"] if b else None
        rows.append("| {c} | {r:.0f} | {p50} / {p95} / {p99} | {d} | {br} | {bp} | {rr} | {pr} |".format(
            c=lv["concurrency"], r=lv["rps"], p50=lat["p50"], p95=lat["p95"], p99=lat["p99"],
            d=lv["queue_depth"]["max"],
            br=f"{b['rps']:.0f}" if b else "n/a",
            bp=f"{bl['p50']} / {bl['p95']} / {bl['p99']}" if bl else "n/a",
            rr=f"{lv['rps'] / b['rps']:.3f}" if b else "n/a",
            pr=f"{lat['p99'] / bl['p99']:.1f}x" if bl else "n/a"))
    s = result["fila"]["sustained"]
    rows.append("")
    rows.append(f"Sustained open loop at {s['target_rps']} req/s for {s['seconds']:.0f} s: {s['rps']:.0f} acked/s, "
                f"p50 {s['latency_ms']['p50']} ms, p99 {s['latency_ms']['p99']} ms, errors {s['errors']}, "
                f"not sent (over 512 in flight) {s['not_sent_over_in_flight_cap']}; queue depth max "
                f"{s['queue_depth']['max']}, mean {s['queue_depth']['mean']}, drained {s['drain_after_s']} s after the last ack.")
    c, i = result["app_cpu"], result["imports"]
    rows.append(f"App CPU per webhook, AWS calls excluded: mean {c['cpu_ms_mean']} ms, p99 {c['cpu_ms_p99']} ms "
                f"({c['requests']} requests). `import app` {i['import_app_ms']} ms vs `import boto3` "
                f"{i['import_boto3_ms']} ms: +{i['app_over_boto3_ms']} ms (median of {i['runs']} fresh interpreters).")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--sustain-rate", type=int, default=300)
    parser.add_argument("--sustain-seconds", type=int, default=60)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    started = datetime.now(UTC)
    result: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "cpu": next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                                 if line.startswith("model name")), "?")},
        "method": {"requests_per_level": args.requests, "levels": LEVELS, "warmup": 1000,
                   "sustain_rate": args.sustain_rate, "sustain_seconds": args.sustain_seconds},
    }
    if not args.no_baseline:
        print("running the Bull baseline…", flush=True)
        result["bull"] = bull_levels(bull_run(args.requests))
    result["fila"] = fila_run(args.requests, args.sustain_rate, args.sustain_seconds)
    result["app_cpu"] = app_cpu.main()
    result["imports"] = import_cost.main()
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"ack-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"\nraw results: {path}\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
