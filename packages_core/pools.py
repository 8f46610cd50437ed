"""Thread pools made on first use, so each gunicorn worker (forked after import) has its own."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor


class LazyPool:
    """A ThreadPoolExecutor created by the first `submit` in a process."""

    def __init__(self, max_workers: int, name: str):
        self._max_workers, self._name = max_workers, name
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, function, /, *args, **kwargs) -> Future:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._max_workers, thread_name_prefix=self._name)
        return self._pool.submit(function, *args, **kwargs)
