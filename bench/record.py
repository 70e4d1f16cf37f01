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
