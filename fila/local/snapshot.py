"""The embedded emulator's state, kept across `fila up` restarts.

moto keeps every queue, table, object and mail in memory. On a clean stop the emulator pickles the
region backends of every service in use (after the API and workers have stopped, so the snapshot is
one consistent moment) and at start it puts them back, so what was acknowledged before a stop is
still stored, still queued and still processed after it. moto has no persistence of its own (its
recorder replays requests, which would re-receive and re-delete SQS messages); a snapshot of its
models is exact. Locks are not state: they are pickled as fresh ones.

The file is written by this machine for this machine (pickle runs code when loaded): it lives in the
checkout's ``.fila/`` (``FILA_STATE_DIR``), is ignored by git, and a file that does not load (another
moto version) is set aside and the emulator starts empty.
"""

from __future__ import annotations

import importlib
import io
import os
import pickle
import sys
import threading
from pathlib import Path
from typing import Any

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


def save(path: Path) -> int:
    """Write the state atomically; its size in bytes."""
    data = capture()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_bytes(data)
    os.replace(partial, path)
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
