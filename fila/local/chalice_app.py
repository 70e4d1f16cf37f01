"""Loading the Chalice app the way `chalice` does: with its stage's environment and function config."""

from __future__ import annotations

import os
from dataclasses import dataclass

from chalice import Chalice
from chalice.cli.factory import CLIFactory
from chalice.local import LocalChalice

from fila import ROOT


@dataclass
class LoadedApp:
    app: Chalice
    factory: CLIFactory
    stage: str


def load(stage: str | None = None, project_dir: str = str(ROOT)) -> LoadedApp:
    stage = stage or os.environ.get("FILA_STAGE", "local")
    factory = CLIFactory(project_dir, environ=os.environ)
    config = factory.create_config_obj(stage)
    app = factory.load_chalice_app(config.environment_variables)
    thread_safe(app)
    return LoadedApp(app, factory, stage)


def thread_safe(app: Chalice) -> None:
    """Give the app a per-thread ``current_request``, as `chalice local` does, for a threaded server."""
    if not isinstance(app, LocalChalice):
        app.__class__ = type("ThreadLocalChalice", (LocalChalice, app.__class__), {})
