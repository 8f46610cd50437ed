"""The content store: the one place that knows storage keys, over a django-storages alias."""

from __future__ import annotations

import os
import uuid
from typing import BinaryIO

from django.core.files import File
from django.core.files.storage import Storage, storages

from packages_core.conf import packages_settings
from packages_core.hashing import BlobHasher, Digests

CHUNK_SIZE = 1024 * 1024


class HashingReader:
    """A read-only file-like wrapper that hashes and counts every byte read through it.

    Storage backends read the wrapper as they write, so the bytes are hashed in the
    same pass that stores them: nothing is read twice and nothing is held whole.
    """

    def __init__(self, stream: BinaryIO, limit: int | None = None):
        self._stream = stream
        self._limit = limit
        self._hasher = BlobHasher()

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


class _StreamFile(File):
    """A django File over a stream of unknown length, read once in CHUNK_SIZE pieces."""

    def __init__(self, stream, name: str):
        super().__init__(stream, name=name)
        self.size = None

    def chunks(self, chunk_size=None):
        while data := self.file.read(chunk_size or CHUNK_SIZE):
            yield data

    def multiple_chunks(self, chunk_size=None):
        return True


class ContentStore:
    """Save, open, move and delete objects by key in one configured storage."""

    def __init__(self, storage: Storage):
        self.storage = storage

    @classmethod
    def default(cls) -> ContentStore:
        return cls(storages[packages_settings.STORAGE_ALIAS])

    @property
    def is_local(self) -> bool:
        """Whether keys map to paths on this machine's file system."""
        try:
            self.storage.path("probe")
        except NotImplementedError:
            return False
        return True

    def save(self, key: str, stream: BinaryIO) -> str:
        """Write `stream` under exactly `key`, replacing what was there; returns the key."""
        if self.is_local:
            # FileSystemStorage.save() picks another name when the key exists; keys
            # here must be exact, so write the file ourselves.
            self._save_local(key, stream)
            return key
        saved = self.storage.save(key, _StreamFile(stream, name=key))
        if saved != key:
            raise RuntimeError(f"Storage saved {key!r} as {saved!r}; it must overwrite keys.")
        return key

    def _save_local(self, key: str, stream: BinaryIO) -> None:
        path = self.storage.path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        draft = f"{path}.{uuid.uuid4().hex}.part"
        try:
            with open(draft, "wb") as handle:
                while data := stream.read(CHUNK_SIZE):
                    handle.write(data)
            os.replace(draft, path)
        except BaseException:
            if os.path.exists(draft):
                os.unlink(draft)
            raise

    def local_path(self, key: str) -> str | None:
        """The file behind `key` on this machine, or None for remote storage."""
        try:
            return self.storage.path(key)
        except NotImplementedError:
            return None

    def open(self, key: str) -> BinaryIO:
        return self.storage.open(key, "rb")

    def exists(self, key: str) -> bool:
        return self.storage.exists(key)

    def size(self, key: str) -> int:
        return self.storage.size(key)

    def delete(self, key: str) -> None:
        """Delete the object if it is there; a missing key is not an error."""
        self.storage.delete(key)

    def move(self, source: str, target: str) -> None:
        """Give the object at `source` the key `target`, without sending its bytes again."""
        if self.is_local:
            target_path = self.storage.path(target)
            os.makedirs(os.path.dirname(target_path), exist_ok=True)
            os.replace(self.storage.path(source), target_path)
            return
        bucket = getattr(self.storage, "bucket", None)
        if bucket is not None:
            # S3: a server-side (multipart, past 5 GB) copy; the bytes never come
            # back through this process.
            bucket.copy(
                {"Bucket": bucket.name, "Key": self.storage._normalize_name(source)},
                self.storage._normalize_name(target),
            )
        else:
            with self.storage.open(source, "rb") as handle:
                self.save(target, handle)
        self.storage.delete(source)

    def url(self, key: str, *, method: str = "GET", expire: int = 300) -> str | None:
        """A URL the client may fetch the object from directly, or None if there is none."""
        if self.is_local:
            return None
        if getattr(self.storage, "bucket", None) is not None:
            return self.storage.url(key, expire=expire, http_method=method)
        try:
            return self.storage.url(key)
        except NotImplementedError:
            return None
