"""The embedded emulator's state, kept across restarts and crashes.

moto keeps every queue, table, object and mail in memory and has no persistence of its own (its
recorder replays requests, which would re-receive and re-delete SQS messages); a pickle of its
region backends is exact. Locks are not state: they are pickled as fresh ones.

The emulator's processes (SQS, DynamoDB, the rest) are snapshotted together, at one cut: each closes
its gate (fila.local.gate), and once all are closed each forks, like Redis's BGSAVE. The forked
children, frozen copies of that one moment, pickle and write their files (temp file, fsync, rename)
while the parents serve again; a manifest naming the files is written last. So no snapshot holds a
job's completion without the message deletion that followed it, or the reverse: a restore is the
state of one instant, like a machine that lost its power. Snapshots are taken every ``interval``
seconds while the state changes, and once more at a clean stop; a ``kill -9`` or a power loss loses
what changed since the last manifest (its ``cut_at`` says when).

The files are written by this machine for this machine (pickle runs code when loaded): they live in
the checkout's ``.fila/`` (``FILA_STATE_DIR``), ignored by git; a set that does not load (another moto
version) is set aside and the emulator starts empty.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import pickle
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

FORMAT = 2
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
    for instance in list(BackendDict._instances):
        module = sys.modules.get(instance.backend.__module__)
        for name, value in vars(module or object()).items():
            if value is instance:
                found[(instance.backend.__module__, name)] = instance
    return found


def capture() -> bytes:
    state = {key: {account: dict(dict.items(regions)) for account, regions in dict.items(backends)}
             for key, backends in _backend_dicts().items()}
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump({"format": FORMAT, "state": state})
    return buffer.getvalue()


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


def load(path: Path) -> int:
    """Restore this process's services from ``path``; the number restored. Raises if unreadable."""
    return restore(path.read_bytes())


class Store:
    """A state folder: ``manifest.json`` names the files of the last complete snapshot."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def manifest_path(self) -> Path:
        return self.folder / "manifest.json"

    def manifest(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError):
            return None
        return data if data.get("format") == FORMAT else None

    def files(self) -> dict[str, Path]:
        """The last snapshot's file per process ({} when there is none)."""
        manifest = self.manifest() or {"files": {}}
        return {name: self.folder / file for name, file in manifest["files"].items()}

    def cut_at(self) -> float | None:
        manifest = self.manifest()
        return float(manifest["cut_at"]) if manifest else None

    def path(self, generation: int, member: str) -> Path:
        return self.folder / f"{generation:08d}-{member}.pickle"

    def next_generation(self) -> int:
        manifest = self.manifest()
        return int(manifest["generation"]) + 1 if manifest else 1

    def commit(self, generation: int, cut_at: float, files: dict[str, Path]) -> None:
        manifest = {"format": FORMAT, "generation": generation, "cut_at": cut_at,
                    "files": {name: path.name for name, path in files.items()}}
        write_durably(self.manifest_path, json.dumps(manifest, indent=1).encode())
        kept = {path.name for path in files.values()} | {self.manifest_path.name}
        for old in self.folder.iterdir():
            if old.name not in kept and not old.name.endswith(".unreadable"):
                old.unlink(missing_ok=True)

    def set_aside(self, reason: str) -> None:
        aside = self.folder.with_name(self.folder.name + ".unreadable")
        shutil.rmtree(aside, ignore_errors=True)
        self.folder.rename(aside)
        print(f"fila: the emulator's saved state could not be loaded ({reason}); it is kept in "
              f"{aside.name} and the emulator starts empty", file=sys.stderr, flush=True)

    def forget(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class Child:
    """A forked snapshot writer."""

    pid: int
    path: Path
    fork_ms: float
    started: float = field(default_factory=time.perf_counter)


def fork_writer(path: Path) -> Child:
    """Fork now (call with the gate closed): the child writes this moment to ``path`` and exits."""
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            write_durably(path, capture())
            code = 0
        finally:
            os._exit(code)
    return Child(pid, path, round((time.perf_counter() - started) * 1000, 2))


def reap(child: Child) -> dict[str, Any]:
    """Wait for a writer: whether it succeeded, how long it took, its CPU and the file's size."""
    _, status, usage = os.wait4(child.pid, 0)
    ok = os.waitstatus_to_exitcode(status) == 0
    return {"ok": ok, "seconds": round(time.perf_counter() - child.started, 3), "fork_ms": child.fork_ms,
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
            "bytes": child.path.stat().st_size if ok else 0}


class Member(Protocol):
    """One emulator process as the coordinator sees it."""

    def changes(self) -> int: ...

    def freeze(self, timeout: float) -> bool: ...

    def thaw(self) -> None: ...

    def fork(self, path: Path) -> Any: ...

    def wait(self, handle: Any) -> dict[str, Any]: ...


@dataclass
class Stats:
    """What snapshots cost: the pause requests saw (freeze + fork) and the writers' work."""

    taken: int = 0
    skipped: int = 0  # a gate did not close in time: tried again at the next tick
    last_pause_ms: float = 0.0
    max_pause_ms: float = 0.0
    last_freeze_ms: float = 0.0  # of the pause: until every gate was closed
    last_fork_ms: float = 0.0  # of the pause: the slowest fork
    last_seconds: float = 0.0
    last_cpu_seconds: float = 0.0
    last_bytes: int = 0
    cut_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


class Coordinator:
    """Snapshots of all ``members`` at one cut, every ``interval`` seconds while anything changes, and
    further apart under load (at most ``MAX_PACE``): never more often than twice the writers' last
    duration, nor than 25 times the last pause (so the pause costs requests at most 4 % of the time)."""

    FREEZE_TIMEOUT = 0.25
    MAX_PACE = 4.0

    def __init__(self, store: Store, members: dict[str, Member], interval: float = 1.0) -> None:
        self.store, self.members, self.interval = store, members, interval
        self.stats = Stats(cut_at=store.cut_at())
        self.saved: dict[str, int] = {}  # member -> its change count at the last snapshot
        self.files = store.files()
        self._stopping = threading.Event()  # set by the main thread, never by a signal handler
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(members)), thread_name_prefix="snapshot")
        self._thread = threading.Thread(target=self._run, name="snapshots", daemon=True)

    def start(self) -> None:
        self.saved = {name: member.changes() for name, member in self.members.items()}
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)

    def _run(self) -> None:
        pace = self.interval
        while not self._stopping.wait(pace):
            try:
                if any(m.changes() != self.saved.get(n) for n, m in self.members.items()):
                    self.take()
            except Exception as err:  # a sibling that is restarting: try again at the next tick
                print(f"fila: emulator snapshot skipped ({type(err).__name__}: {err})", file=sys.stderr,
                      flush=True)
            # under load a snapshot costs more: its requests' pause, its writers' CPU; take fewer, up to
            # MAX_PACE apart (the crash window)
            pace = min(self.MAX_PACE, max(self.interval, 2 * self.stats.last_seconds,
                                          self.stats.last_pause_ms / 1000 * 25))

    def take(self, freeze_timeout: float = FREEZE_TIMEOUT) -> bool:
        """One snapshot of every member at one cut; False if a gate did not close in time."""
        with self._lock:
            started = time.perf_counter()
            names = list(self.members)
            frozen = dict(zip(names, self._pool.map(lambda n: self.members[n].freeze(freeze_timeout), names),
                              strict=True))
            if not all(frozen.values()):
                for name in (n for n, ok in frozen.items() if ok):
                    self.members[name].thaw()
                self.stats.skipped += 1
                return False
            frozen_ms = (time.perf_counter() - started) * 1000
            cut, generation = time.time(), self.store.next_generation()
            counts = {n: m.changes() for n, m in self.members.items()}
            dirty = [n for n in names if counts[n] != self.saved.get(n) or n not in self.files]
            for name in names:
                if name not in dirty:
                    self.members[name].thaw()  # unchanged since its last file: that file still holds
            paths = {n: self.store.path(generation, n) for n in dirty}
            handles = dict(zip(dirty, self._pool.map(lambda n: self.members[n].fork(paths[n]), dirty),
                               strict=True))  # each thaws as soon as it has forked
            pause = (time.perf_counter() - started) * 1000
            results = dict(zip(dirty, self._pool.map(lambda n: self.members[n].wait(handles[n]), dirty),
                               strict=True))
            if not all(r["ok"] for r in results.values()):
                print("fila: an emulator snapshot failed; the previous one is kept", file=sys.stderr,
                      flush=True)
                return False
            self.files = {**self.files, **paths}
            self.store.commit(generation, cut, self.files)
            self.saved.update({n: counts[n] for n in dirty})
            s = self.stats
            s.taken, s.cut_at = s.taken + 1, cut
            s.last_pause_ms, s.max_pause_ms = round(pause, 2), round(max(s.max_pause_ms, pause), 2)
            s.last_freeze_ms = round(frozen_ms, 2)
            s.last_fork_ms = max((r["fork_ms"] for r in results.values()), default=0.0)
            s.last_seconds = max((r["seconds"] for r in results.values()), default=0.0)
            s.last_cpu_seconds = round(sum(r["cpu_seconds"] for r in results.values()), 3)
            s.last_bytes = sum(p.stat().st_size for p in self.files.values())
            return True

    def final(self) -> bool:
        """The stop's own snapshot (gates wait longer: nothing else is left to do)."""
        self.stop()
        return self.take(freeze_timeout=1.0)
