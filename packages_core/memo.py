"""A small per-process memory, for what every request asks and seldom changes.

With Basic credentials, every request of a push or pull asked the shared cache three
times (the sign-in failure counts, twice, and the verified credentials) and the database
once (the user's row): on the file cache three file opens, each releasing the
interpreter lock to the worker's event loop and waiting to get it back (13% of a
worker's samples under load). What this process learnt a moment ago answers instead,
for as long as being that stale is harmless (the callers say how long); entries are
dropped at once where this process learns better.
"""

from __future__ import annotations

import threading
import time

MAX_ENTRIES = 4096


class Memo:
    """Values kept for a given number of seconds; at most MAX_ENTRIES, the oldest going
    first when full.
    """

    def __init__(self, max_entries: int = MAX_ENTRIES):
        self._entries: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()
        self._max = max_entries

    def get(self, key: str, default=None):
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return default
        return entry[1]

    def set(self, key: str, value, seconds: float) -> None:
        with self._lock:
            self._entries.pop(key, None)
            if len(self._entries) >= self._max:
                # Insertion order is age order: drop the oldest tenth.
                for old in list(self._entries)[: max(1, self._max // 10)]:
                    del self._entries[old]
            self._entries[key] = (time.monotonic() + seconds, value)

    def delete(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
