"""The layers and the one home of each fact: bench → fila → app.py → chalicelib, and chalicelib ships
alone (it names neither the local stack's defaults nor the emulator)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from fila import ROOT, chalice_config

SHIPPED = [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]
LOCAL_ONLY = re.compile(r"fila-local-|whsec_fila_local|127\.0\.0\.1|_fakes|moto|localstack|4566", re.I)


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_what_ships_imports_nothing_of_the_local_tooling_the_tests_or_the_benches() -> None:
    for path in SHIPPED:
        upward = {m for m in imports(path) if m.split(".")[0] in ("fila", "tests", "bench", "moto")}
        assert not upward, f"{path.relative_to(ROOT)} imports {sorted(upward)}"


def test_what_ships_names_no_local_default_and_no_emulator() -> None:
    for path in [*SHIPPED, ROOT / "chalicelib" / "dashboard.html"]:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            assert not LOCAL_ONLY.search(line), f"{path.relative_to(ROOT)}:{n}: {line.strip()}"


def test_modules_fit_on_a_screen_or_two() -> None:
    for path in [*SHIPPED, *sorted((ROOT / "fila").rglob("*.py"))]:
        lines = len(path.read_text().splitlines())
        assert lines <= 350, f"{path.relative_to(ROOT)} has {lines} lines"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                assert length <= 80, f"{path.relative_to(ROOT)}:{node.lineno} {node.name} has {length} lines"


def test_the_chalice_config_is_the_one_the_declaration_renders() -> None:
    assert chalice_config.PATH.read_text() == chalice_config.text(), (
        "stale .chalice/config.json: run .venv/bin/python -m fila.chalice_config")
    assert "local" not in chalice_config.render()["stages"]


def test_the_lane_declaration_ships_beside_the_code() -> None:
    shipped = ROOT / "chalicelib" / "resources.json"
    assert shipped.resolve() == (ROOT / "infra" / "resources.json").resolve()
