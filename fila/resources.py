"""Reading infra/resources.json, the one description of fila's AWS resources."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from fila import ROOT

PATH = ROOT / "infra" / "resources.json"


@cache
def resources() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(PATH.read_text())
    return data
