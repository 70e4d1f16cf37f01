"""Cold-start import cost: `import app` against `import boto3` alone, in fresh interpreters."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = "import time; t = time.perf_counter(); import {module}; print((time.perf_counter() - t) * 1000)"


def cost(module: str, runs: int) -> float:
    samples = [float(subprocess.run([sys.executable, "-c", PROBE.format(module=module)], cwd=ROOT,
                                    capture_output=True, text=True, check=True).stdout)
               for _ in range(runs)]
    return statistics.median(samples)


def main(runs: int = 15) -> dict[str, float]:
    boto3_ms, app_ms = cost("boto3", runs), cost("app", runs)
    return {"runs": runs, "import_boto3_ms": round(boto3_ms, 1), "import_app_ms": round(app_ms, 1),
            "app_over_boto3_ms": round(app_ms - boto3_ms, 1)}


if __name__ == "__main__":
    print(json.dumps(main()))
