"""``.chalice/config.json``, rendered from the resources' declaration (timeouts, reserved concurrency)
and the deployable stages. It is committed so ``chalice`` works from a clone; a test fails when it
drifts from what ``render`` makes (``python -m fila.chalice_config`` writes it).

There is no ``local`` stage: ``local`` and ``local-*`` use the public local secrets and are never
deployed (``make deploy`` refuses them; a plain ``chalice deploy --stage local`` gets no FILA_STAGE,
and every function answers 503).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from chalicelib import resources
from fila import ROOT

PATH = ROOT / ".chalice" / "config.json"
# The stages this repository describes; any other name works the same way (make deploy adds it).
STAGES: dict[str, dict[str, Any]] = {
    "dev": {"log_level": "INFO"},
    "prod": {"log_level": "INFO", "lambda_memory_size": 1024},
}


def stage_config(stage: str, **settings: Any) -> dict[str, Any]:
    functions: dict[str, dict[str, Any]] = {}
    for lane in resources.lanes().values():
        if stage in lane.reserved_concurrency:
            functions[lane.function] = {"reserved_concurrency": lane.reserved_concurrency[stage]}
    config: dict[str, Any] = {
        "api_gateway_stage": "api",
        "environment_variables": {"FILA_STAGE": stage,
                                  "POWERTOOLS_LOG_LEVEL": settings.get("log_level", "INFO")},
        "tags": {"project": "fila", "stage": stage},
    }
    if "lambda_memory_size" in settings:
        config["lambda_memory_size"] = settings["lambda_memory_size"]
    if functions:
        config["lambda_functions"] = functions
    return config


def render(extra_stages: tuple[str, ...] = ()) -> dict[str, Any]:
    timeouts = resources.function_timeouts()
    return {
        "version": "2.0",
        "app_name": "fila",
        "autogen_policy": False,
        "automatic_layer": True,
        "iam_policy_file": "policy.json",
        "lambda_memory_size": 512,
        "lambda_timeout": timeouts["api_handler"],
        "lambda_functions": {name: {"lambda_timeout": t} for name, t in sorted(timeouts.items())
                             if name != "api_handler"},
        "stages": {name: stage_config(name, **STAGES.get(name, {}))
                   for name in dict.fromkeys([*STAGES, *extra_stages])},
    }


def text(extra_stages: tuple[str, ...] = ()) -> str:
    return json.dumps(render(extra_stages), indent=2) + "\n"


if __name__ == "__main__":
    PATH.write_text(text(tuple(sys.argv[1:])))
    print(f"wrote {PATH}")
