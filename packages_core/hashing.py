"""Hashing blobs as they stream: sha256 always, sha512 only when a client names one.

Blobs are content-addressed by sha256. A client may name a blob by its sha512
instead; only then is sha512 computed too (it costs about twice what sha256 does).
hashlib releases the GIL for large buffers, so each piece's sha512 runs on a helper
thread while this thread does the sha256 (and the write).
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future
from dataclasses import dataclass

from packages_core.pools import LazyPool

# Below this a thread hand-off costs more than the hashing it would move.
PARALLEL_MIN_BYTES = 64 * 1024

_sha512_pool = LazyPool(4, "sha512")


@dataclass(frozen=True)
class Digests:
    """What hashing a stream produced; sha512 is None when it was not asked for."""

    size: int
    sha256: str
    sha512: str | None = None


class BlobHasher:
    """The size and sha256 of every byte fed to it, in order, and sha512 if asked."""

    def __init__(self, *, sha512: bool = False):
        self._sha256 = hashlib.sha256()
        self._sha512 = hashlib.sha512() if sha512 else None
        self._pending: Future | None = None
        self.size = 0

    def update(self, data: bytes) -> None:
        if self._sha512 is not None:
            self._settle()
            if len(data) >= PARALLEL_MIN_BYTES:
                self._pending = _sha512_pool.submit(self._sha512.update, data)
            else:
                self._sha512.update(data)
        self._sha256.update(data)
        self.size += len(data)

    def digests(self) -> Digests:
        self._settle()
        sha512 = self._sha512.hexdigest() if self._sha512 is not None else None
        return Digests(self.size, self._sha256.hexdigest(), sha512)

    def _settle(self) -> None:
        # One piece in flight at most: sha512 sees the pieces in order.
        if self._pending is not None:
            self._pending.result()
            self._pending = None
