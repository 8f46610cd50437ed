"""Hashing blobs with sha256 and sha512 at once, the two running on separate cores.

sha512 costs about twice what sha256 does; hashlib releases the GIL for large
buffers, so handing each piece's sha512 to a helper thread while this thread does
sha256 (and the write) takes it off the upload's critical path.
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

# Below this a thread hand-off costs more than the hashing it would move.
PARALLEL_MIN_BYTES = 64 * 1024

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    # Made on first use, so each gunicorn worker (forked after import) has its own.
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sha512")
        return _pool


@dataclass(frozen=True)
class Digests:
    """What hashing a stream produced."""

    size: int
    sha256: str
    sha512: str


class BlobHasher:
    """The sha256, sha512 and size of every byte fed to it, in order."""

    def __init__(self):
        self._sha256 = hashlib.sha256()
        self._sha512 = hashlib.sha512()
        self._pending: Future | None = None
        self.size = 0

    def update(self, data: bytes) -> None:
        self._settle()
        if len(data) >= PARALLEL_MIN_BYTES:
            self._pending = _executor().submit(self._sha512.update, data)
        else:
            self._sha512.update(data)
        self._sha256.update(data)
        self.size += len(data)

    def digests(self) -> Digests:
        self._settle()
        return Digests(self.size, self._sha256.hexdigest(), self._sha512.hexdigest())

    def _settle(self) -> None:
        # One piece in flight at most: sha512 sees the pieces in order.
        if self._pending is not None:
            self._pending.result()
            self._pending = None
