"""Faults the soak injects from outside the stack: an endpoint that goes away, a worker that dies.

Hand-written because the usual tool (toxiproxy) is a Go server that cannot be installed here; a
cut needs no more than refusing connections and dropping the open ones.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from contextlib import suppress
from pathlib import Path

from fila.local.emulator import free_port
from fila.local.running import Stack, descendants


class Outage:
    """A TCP proxy to ``host:port`` that can be cut: while cut, connections are refused and the open
    ones are dropped (what a client sees when an endpoint is unreachable)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.open: set[socket.socket] = set()
        self.listener: socket.socket | None = None
        self.cuts = 0

    def __enter__(self) -> Outage:
        self.restore()
        return self

    def __exit__(self, *_: object) -> None:
        self.cut(count=False)

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(256)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self, count: bool = True) -> None:
        with self.lock:
            if self.listener is not None:
                self.listener.close()
                self.listener = None
            for sock in self.open:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.open.clear()
        self.cuts += count

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                if self.listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self.open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with self.lock:
            self.open -= {source, sink}


def workers_pids(stack: Stack) -> set[int]:
    """The stack's workers processes (`fila workers`)."""
    assert stack.proc is not None
    found = set()
    for pid in descendants(stack.proc.pid):
        with suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as f:
            if f.read().split(b"\0")[-2:-1] == [b"workers"]:
                found.add(pid)
    return found


def kill_workers(stack: Stack, timeout: float = 30) -> None:
    """SIGKILL the workers mid-batch, as a Lambda sandbox dies, and wait until `fila up` has started
    new ones (what they held comes back from SQS when its visibility timeout ends)."""
    killed = workers_pids(stack)
    if not killed:
        raise RuntimeError("no workers process to kill")
    for pid in killed:
        os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while not workers_pids(stack) - killed:
        stack.assert_running()
        if time.monotonic() > deadline:
            raise RuntimeError("fila up did not start new workers")
        time.sleep(0.2)


ROLES = ((b"fila.local.moto_server", "emulator"), (b"serve-api", "API"), (b"workers", "consumers"), (b"up", "supervisor"))


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """A process's CPU seconds so far (user + system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds so far of a process and its descendants (the emulator runs a process per service)."""
    return sum(cpu_seconds(p) for p in [pid, *descendants(pid)])


class CpuMeter:
    """CPU seconds of the stack's processes by role, sampled every second from /proc, so that a run
    can say what bounded it. A killed process keeps its last sample (up to a second is lost)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.last: dict[int, tuple[str, float]] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuMeter:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        while not self.stop.wait(1.0):
            self.sample()

    def sample(self) -> None:
        assert self.stack.proc is not None
        for pid in descendants(self.stack.proc.pid) | {self.stack.proc.pid}:
            with suppress(OSError, IndexError, ValueError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                seconds = cpu_seconds(pid)
                # a pid keeps the role it was first seen with (a killed process's zombie has no cmdline)
                role = self.last[pid][0] if pid in self.last else next(
                    (name for arg, name in ROLES if arg in cmdline), "other")
                self.last[pid] = (role, seconds)

    def reading(self) -> dict[str, float]:
        """CPU seconds so far: per role, this process (load generator and checks), the machine."""
        self.sample()
        by_role: dict[str, float] = {}
        for role, seconds in self.last.values():
            by_role[role] = by_role.get(role, 0.0) + seconds
        me = os.times()
        by_role["soak (load, checks)"] = me.user + me.system
        busy = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        by_role["machine"] = (sum(busy) - busy[3] - busy[4]) / TICK  # all but idle and iowait
        return by_role


def cpu_share(start: dict[str, float], end: dict[str, float], seconds: float) -> dict[str, int]:
    """Per role, % of one core between two readings."""
    return {role: round(100 * (end[role] - start.get(role, 0.0)) / seconds) for role in end if seconds > 0}
