"""Streams the content store reads and writes through: hashing, counting, spans, joins."""

from __future__ import annotations

from typing import BinaryIO

from django.core.files import File

from packages_core import durability
from packages_core.hashing import BlobHasher, Digests
from packages_core.pools import LazyPool

CHUNK_SIZE = 1024 * 1024

_writers = LazyPool(16, "file-writer")


def copy_to_file(stream: BinaryIO, handle: BinaryIO) -> int:
    """Write all of `stream` to the open file `handle` at its position; the bytes written.

    Each piece is written on a helper thread while the next is read (from the socket,
    and hashed on the way): the write, which the kernel may hold back while it flushes
    to disk, overlaps the receiving and hashing instead of following them. One write
    is in flight at a time, so pieces land in order and at most two are in memory.
    With durable writes on, each piece's way to the disk starts at once.
    """
    start = handle.tell()
    writeback = durability.enabled()

    def write(data: bytes, offset: int) -> None:
        handle.write(data)
        if writeback:
            handle.flush()
            durability.start_writeback(handle.fileno(), offset, len(data))

    written, pending = 0, None
    try:
        while data := stream.read(CHUNK_SIZE):
            if pending is not None:
                pending.result()
            pending = _writers.submit(write, data, start + written)
            written += len(data)
    finally:
        if pending is not None:
            pending.result()
    return written


class HashingReader:
    """A read-only file-like wrapper that hashes and counts every byte read through it.

    Storage backends read the wrapper as they write, so the bytes are hashed in the
    same pass that stores them: nothing is read twice and nothing is held whole.
    """

    def __init__(self, stream: BinaryIO, limit: int | None = None, *, sha512: bool = False):
        self._stream = stream
        self._limit = limit
        self._hasher = BlobHasher(sha512=sha512)

    @property
    def size(self) -> int:
        return self._hasher.size

    def read(self, size: int = -1) -> bytes:
        if self._limit is not None:
            remaining = self._limit - self.size
            if remaining <= 0:
                return b""
            size = remaining if size is None or size < 0 else min(size, remaining)
        data = self._stream.read(size)
        if data:
            self._hasher.update(data)
        return data

    def digests(self) -> Digests:
        return self._hasher.digests()


class CountingReader:
    """Counts the bytes read through it, for a writer that must know how many it wrote."""

    def __init__(self, stream: BinaryIO):
        self._stream, self.count = stream, 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.count += len(data)
        return data


class StreamFile(File):
    """A django File over a stream of unknown length, read once in CHUNK_SIZE pieces."""

    def __init__(self, stream, name: str):
        super().__init__(stream, name=name)
        self.size = None

    def chunks(self, chunk_size=None):
        while data := self.file.read(chunk_size or CHUNK_SIZE):
            yield data

    def multiple_chunks(self, chunk_size=None):
        return True

    # Storages probe these before writing; a one-pass stream cannot rewind.
    @property
    def closed(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False


class Span:
    """A read-only view of `length` bytes of an open file, closing it at the end."""

    def __init__(self, handle: BinaryIO, length: int | None):
        self._handle, self._left = handle, length

    def read(self, size: int = -1) -> bytes:
        if self._left is not None:
            if self._left <= 0:
                return b""
            size = self._left if size is None or size < 0 else min(size, self._left)
        data = self._handle.read(size)
        if self._left is not None:
            self._left -= len(data)
        return data

    def close(self) -> None:
        self._handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Empty:
    """A stream with no bytes."""

    def read(self, size: int = -1) -> bytes:
        return b""


class Concatenation:
    """Reads several stored objects one after another, as one stream.

    `store` is anything with `reader(key)`: the content store or one of its backends.
    """

    def __init__(self, store, keys: list[str]):
        self._store, self._keys, self._current = store, list(keys), None

    def read(self, size: int = -1) -> bytes:
        while True:
            if self._current is None:
                if not self._keys:
                    return b""
                self._current = self._store.reader(self._keys.pop(0))
            data = self._current.read(size if size and size > 0 else CHUNK_SIZE)
            if data:
                return data
            self._current.close()
            self._current = None
