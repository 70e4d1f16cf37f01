"""Who holds a TCP port: so `make run` can say which process is in the way, instead of half-starting.

Read from /proc (``net/tcp*`` for the listening socket's inode, then each process's open fds), the
way ``ss -ltnp`` does; processes of other users may be unreadable, and are reported as unknown. Also
the connection settings every local server takes (``OPEN_DOORS``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

LISTEN = "0A"
# waitress settings for every local server (API and emulator). By default it accepts 100 connections and
# leaves the rest in the kernel's queue, unserved: keep-alive pools (undici's, botocore's) hold more than
# that under load, and a request on an unaccepted connection waited seconds (ack p99 4.6 s at c=64).
# poll(), since select() stops at 1,024 descriptors.
OPEN_DOORS = {"connection_limit": 1000, "asyncore_use_poll": True}
FILA_MARKERS = ("fila.cli", "fila.local.moto_server", "/fila up", "bin/fila")


@dataclass(frozen=True)
class Holder:
    pid: int | None  # None: the socket's owner could not be read
    command: str

    @property
    def is_fila(self) -> bool:
        return any(marker in self.command for marker in FILA_MARKERS)

    def describe(self, port: int) -> str:
        if self.pid is None:
            return (f"port {port} is taken by a process this user cannot inspect"
                    f" (try: ss -ltnp 'sport = :{port}')")
        text = f"port {port} is taken by pid {self.pid}: {self.command[:200]}"
        if self.is_fila:
            text += ("\n  it looks like an earlier fila stack that was not stopped;"
                     f" stop it with: kill {self.pid}  (or kill -9 {self.pid} if it does not exit)")
        else:
            text += f"\n  stop it (kill {self.pid}) or choose another port (PORT=… make run)"
        return text


def holder(port: int) -> Holder | None:
    """The process listening on ``port`` (any local address), or None if nobody listens."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            links = {os.readlink(fd) for fd in fd_dir.iterdir()}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            pid = int(fd_dir.parent.name)
            return Holder(pid, _command(pid))
    return Holder(None, "")


def _listening_inodes(port: int) -> set[str]:
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(fields[9])
    return found


def _command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip() or "?"
