"""Running `fila up` in the background on free ports, as a user would (tests and benches)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from fila.local.defaults import FAKE_TARGETS
from fila.local.emulator import free_port


def descendants(*pids: int) -> set[int]:
    """Every live process below ``pids`` (children start their own sessions, so walk parent links)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    found: set[int] = set()
    frontier = set(pids)
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped, is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class Stack:
    def __init__(self, **env: str) -> None:
        self.port = free_port()
        self.aws_port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.aws = f"http://127.0.0.1:{self.aws_port}"
        self.log = tempfile.NamedTemporaryFile(prefix="fila-up-", suffix=".log", delete=False)  # noqa: SIM115
        # not the caller's endpoints nor its targets: a bench that set them for its own stage (whose fakes
        # are on another port) would send this stack's CRM and Slack calls nowhere
        inherited = {k: v for k, v in os.environ.items()
                     if not k.startswith("AWS_ENDPOINT_URL_") and k not in FAKE_TARGETS}
        self.env = {**inherited, "PORT": str(self.port), "AWS_ENDPOINT_URL": self.aws,
                    "FILA_STAGE": "local", "POWERTOOLS_LOG_LEVEL": "WARNING",
                    "FILA_STATE_DIR": tempfile.mkdtemp(prefix="fila-state-"), **env}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *args: str, timeout: float = 90) -> Stack:
        """Start (or start again: same ports, same state folder) and wait until it is up."""
        seen = len(self.output())
        self.proc = subprocess.Popen([sys.executable, "-m", "fila.cli", "up", *args], env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"fila up exited:\n{self.output()}"
            try:
                healthy = requests.get(self.base + "/health", timeout=1).status_code == 200
                if healthy and "is up" in self.output()[seen:]:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError(f"fila up not healthy after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def assert_running(self) -> None:
        """Raise when `fila up` has exited: whoever waits on the stack would otherwise wait for nothing."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            tail = self.output()[-3000:]
            raise RuntimeError(f"fila up exited ({self.proc.returncode}); its log ends:\n{tail}")

    def kill(self) -> None:
        """SIGKILL `fila up` and every process it started, at once: a crash, or a power cut."""
        assert self.proc is not None
        for pid in {self.proc.pid, *descendants(self.proc.pid)}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15) -> float:
        """Signal `fila up` as Ctrl-C would; seconds until it exited."""
        assert self.proc is not None
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                raise
        return time.monotonic() - started
