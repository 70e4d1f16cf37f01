"""The embedded emulator's state, kept across restarts and crashes.

moto keeps every queue, table, object and mail in memory and has no persistence of its own (its
recorder replays requests, which would re-receive and re-delete SQS messages); a pickle of its
region backends is exact. Locks are not state: they are pickled as fresh ones.

Crash safety: while the state changes, a ``Snapshotter`` takes a snapshot every ``interval`` seconds
the way Redis's BGSAVE does: it closes the gate (fila.local.gate) for the instant of an ``os.fork``,
and the child, a frozen copy of that moment, pickles it, writes a temporary file, fsyncs it and
renames it over the last one, while the parent goes on serving. A ``kill -9`` or a power loss loses
at most what changed since the last completed snapshot; ``<state>.json`` says when its cut was taken.

The file is written by this machine for this machine (pickle runs code when loaded): it lives in the
checkout's ``.fila/`` (``FILA_STATE_DIR``), is ignored by git, and a file that does not load (another
moto version) is set aside and the emulator starts empty.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import pickle
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fila.local.gate import Gate

FORMAT = 1
_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, threading.Condition):
            return threading.Condition, ()
        if isinstance(obj, _LOCK_TYPES):
            return (threading.RLock if "RLock" in type(obj).__name__ else threading.Lock), ()
        return NotImplemented


def _backend_dicts() -> dict[tuple[str, str], Any]:
    """Every moto service in use: (module, attribute) -> its BackendDict."""
    from moto.core.base_backend import BackendDict

    found = {}
    for instance in list(BackendDict._instances):  # type: ignore[misc]
        module = sys.modules.get(instance.backend.__module__)
        for name, value in vars(module or object()).items():
            if value is instance:
                found[(instance.backend.__module__, name)] = instance
    return found


def capture() -> bytes:
    state = {key: {account: dict(dict.items(regions)) for account, regions in dict.items(backends)}
             for key, backends in _backend_dicts().items()}
    for _ in range(3):  # a request still finishing may change a dict under the pickler: try again
        buffer = io.BytesIO()
        try:
            _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump({"format": FORMAT, "state": state})
            return buffer.getvalue()
        except RuntimeError:
            continue
    raise RuntimeError("the emulator's state kept changing while it was saved")


def restore(data: bytes) -> int:
    """Put captured backends back; the number of services restored."""
    snapshot = pickle.loads(data)  # written by capture() on this machine (see above)
    if snapshot.get("format") != FORMAT:
        raise ValueError(f"snapshot format {snapshot.get('format')!r}, expected {FORMAT}")
    for (module, name), accounts in snapshot["state"].items():
        backends = getattr(importlib.import_module(module), name)
        for account, regions in accounts.items():
            for region, backend in regions.items():
                dict.__setitem__(backends[account], region, backend)
    return len(snapshot["state"])


def write_durably(path: Path, data: bytes) -> None:
    """Temp file, fsync, rename, fsync the folder: after a crash ``path`` is the old or the new
    content, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def save(path: Path, cut_at: float | None = None) -> int:
    """Write the state durably, then when its cut was taken (``<state>.json``); its size in bytes."""
    data = capture()
    write_durably(path, data)
    meta = {"cut_at": time.time() if cut_at is None else cut_at, "bytes": len(data)}
    write_durably(path.with_suffix(".json"), json.dumps(meta).encode())
    return len(data)


def load(path: Path) -> int:
    """Restore from ``path`` if it is there; the number of services restored (0: starting empty)."""
    if not path.exists():
        return 0
    try:
        return restore(path.read_bytes())
    except Exception as err:  # another moto version, a truncated file: keep it, start empty
        from moto.core.base_backend import BackendDict

        BackendDict.reset()
        path.replace(path.with_suffix(".unreadable"))
        print(f"fila: the emulator's saved state could not be loaded ({type(err).__name__}: {err}); "
              f"it is kept as {path.with_suffix('.unreadable').name} and the emulator starts empty",
              file=sys.stderr, flush=True)
        return 0


def cut_at(path: Path) -> float | None:
    """When the cut of the last completed snapshot at ``path`` was taken (None: there is none)."""
    try:
        return float(json.loads(path.with_suffix(".json").read_text())["cut_at"])
    except (OSError, ValueError, KeyError):
        return None


@dataclass
class Stats:
    """What snapshots cost: the requests' pause (freeze + fork) and the child's work."""

    taken: int = 0
    skipped: int = 0  # the gate did not close in time: tried again at the next tick
    last_pause_ms: float = 0.0
    max_pause_ms: float = 0.0
    last_seconds: float = 0.0  # the child: pickle, write, fsync, rename
    last_cpu_seconds: float = 0.0
    last_bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


class Snapshotter:
    """Snapshots of a changing state, every ``interval`` seconds at most and never more often than
    twice the last one's duration (so the child's CPU stays a fraction of a core under load)."""

    FREEZE_TIMEOUT = 0.5

    def __init__(self, path: Path, gate: Gate, interval: float = 1.0) -> None:
        self.path, self.gate, self.interval = path, gate, interval
        self.stats = Stats()
        self.saved_changes = gate.changes
        self._stopping = threading.Event()  # set by the main thread, never by a signal handler
        self._thread = threading.Thread(target=self._run, name="snapshots", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(10)

    def _run(self) -> None:
        pace = self.interval
        while not self._stopping.wait(pace):
            if self.gate.changes != self.saved_changes:
                self.take()
            pace = max(self.interval, 2 * self.stats.last_seconds)

    def take(self) -> bool:
        started = time.perf_counter()
        if not self.gate.freeze(self.FREEZE_TIMEOUT):
            self.stats.skipped += 1
            return False
        changes, cut = self.gate.changes, time.time()
        try:
            pid = os.fork()
            if pid == 0:  # the child: a frozen copy of this moment
                code = 1
                try:
                    save(self.path, cut)
                    code = 0
                finally:
                    os._exit(code)
        finally:
            self.gate.thaw()
        pause = (time.perf_counter() - started) * 1000
        forked = time.perf_counter()
        _, status, usage = os.wait4(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            print("fila: an emulator snapshot failed; the previous one is kept", file=sys.stderr, flush=True)
            return False
        self.saved_changes = changes
        s = self.stats
        s.taken += 1
        s.last_pause_ms, s.max_pause_ms = pause, max(s.max_pause_ms, pause)
        s.last_seconds, s.last_cpu_seconds = time.perf_counter() - forked, usage.ru_utime + usage.ru_stime
        s.last_bytes = self.path.stat().st_size
        return True

    def final(self) -> int:
        """The stop's own snapshot, in this process (nothing is left to serve)."""
        self.gate.freeze(2.0)  # stays closed: what a request changes after this would not be saved
        return save(self.path)  # a request still inside after 2 s: the retries in capture() cover it
