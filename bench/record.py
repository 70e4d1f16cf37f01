"""Where a bench run's raw results go: bench/results/<kind>-<start time>.json (not committed)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def save(kind: str, started: datetime, result: dict[str, Any]) -> Path:
    """Write the run's results, print them and where they are; the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{kind}-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"raw results: {path}")
    return path


def rate_limits() -> dict[str, str]:
    """The lanes' rate limits this run's stack starts with (``RATE_LIMIT_<LANE>`` or as declared): a
    drain that sends emails is bound by them, so a result says which it ran at."""
    from chalicelib.resources import lanes

    lanes.cache_clear()
    return {name: f"{lane.rate_limit.max}/{lane.rate_limit.per_seconds}s"
            for name, lane in lanes().items() if lane.rate_limit}
