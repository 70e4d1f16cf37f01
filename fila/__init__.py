"""fila's local tooling and CLI. Never shipped to Lambda (only app.py and chalicelib/ are)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
