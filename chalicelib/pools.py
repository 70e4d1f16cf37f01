"""Thread pools per container. On Lambda a container is a process running one invocation at a time;
the local stack runs a lane's concurrent invocations as threads of one process, each standing for a
container. So a pool belongs to the invoking thread, is shared by the threads its pools run (a
record's jobs go on its own container's pool, not on one shared by every local invocation), and ends
with it: its threads exit once the invoker is gone.
"""

from __future__ import annotations

import threading
import weakref
from concurrent.futures import ThreadPoolExecutor


class _Container:
    def __init__(self) -> None:
        self.pools: dict[str, ThreadPoolExecutor] = {}
        self.lock = threading.Lock()


_here = threading.local()  # .container: an invoker's own; .adopted: a weak reference to its invoker's


def pool(name: str, size: int) -> ThreadPoolExecutor:
    """This container's pool ``name`` of ``size`` threads."""
    container = _container()
    if (made := container.pools.get(name)) is not None:  # every batch and record asks: no lock once made
        return made
    with container.lock:
        if name not in container.pools:
            container.pools[name] = ThreadPoolExecutor(max_workers=max(1, size), thread_name_prefix=name,
                                                       initializer=_adopt, initargs=(weakref.ref(container),))
        return container.pools[name]


def _container() -> _Container:
    adopted = getattr(_here, "adopted", None)
    if adopted is not None and (container := adopted()) is not None:
        return container
    own: _Container | None = getattr(_here, "container", None)
    if own is None:
        own = _here.container = _Container()
    return own


def _adopt(container: weakref.ref[_Container]) -> None:
    """A pool's thread works for the container that made the pool (weakly: it must not keep it alive)."""
    _here.adopted = container
