"""Streams handed between threads: each stage of a streaming job on its own thread.

A job's stages (separating, rendering, writing) each take most of a core; on a worker thread per
stage they overlap, since numpy and the FFTs release the GIL while they compute.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any


def ahead(items: Iterable[Any], depth: int = 2) -> Iterator[Any]:
    """`items`, made on a worker thread up to `depth` ahead of the caller. An exception on the
    worker is raised here; stopping early stops it."""
    pending: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def hand_over(item: Any) -> bool:
        while not stop.is_set():
            try:
                pending.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def worker() -> None:
        try:
            for item in items:
                if not hand_over(item):
                    return
            hand_over(end)
        except BaseException as exc:  # handed to the caller's thread
            hand_over((end, exc))

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        while (item := pending.get()) is not end:
            if isinstance(item, tuple) and len(item) == 2 and item[0] is end:
                raise item[1]
            yield item
    finally:
        stop.set()
        thread.join()
