"""The backend for storage on this machine's file system: renames, appends, file locks.

Every piece of an upload session is appended to one staging file, hashed as it is
written, so each byte is written once and read once; finishing renames the file to
its content-addressed key. Files are synced before a row names them (durability.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import BinaryIO

from packages_core import durability
from packages_core.storage.generic import StorageBackend
from packages_core.storage.keys import draft_path, lock_path
from packages_core.storage.objects import LostBytes, StoredObject, pages
from packages_core.storage.streams import Empty, copy_to_file

logger = logging.getLogger(__name__)


class LocalBackend(StorageBackend):
    """Objects as files under a storage whose keys map to paths (FileSystemStorage)."""

    is_local = True

    def local_path(self, key: str) -> str:
        return self.storage.path(key)

    def begin(self, key: str, stream: BinaryIO) -> LocalPending:
        return LocalPending.write(self.storage.path(key), stream)

    def move(self, source: str, target: str) -> None:
        source_path, target_path = self.storage.path(source), self.storage.path(target)
        os.makedirs(os.path.dirname(target_path), exist_ok=True)
        if durability.enabled():
            durability.sync_file(source_path)
        os.replace(source_path, target_path)
        if durability.enabled():
            durability.sync_directory(os.path.dirname(target_path))

    def url(self, key: str, *, method: str, expire: int, content_type: str) -> None:
        """None: the file is served by this process (or nginx), never by a link."""
        return None

    def list_objects(self, prefix: str, page_size: int) -> Iterator[list[StoredObject]]:
        yield from pages(_walk_directory(self.storage.path(prefix), prefix), page_size)

    @contextlib.contextmanager
    def abandoned(self, key: str) -> Iterator[bool]:
        """A file that `begin` writes is locked (`flock`) by its writer from its creation
        until its `abort()`, and the kernel drops the lock when the writer dies: True
        (holding the lock through the block) means its writer is gone; False if a
        writer holds it, or the file is gone.
        """
        try:
            handle = open(self.storage.path(key), "rb")  # noqa: SIM115 - closed after the block
        except FileNotFoundError:
            yield False
            return
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True

    # Upload sessions: one file, appended in place under a file lock.

    def append_upload(self, key: str) -> FileAppend:
        return FileAppend(self, key)

    def upload_keys(self, key: str, size: int, pieces: list) -> list[str]:
        return [key] if size else []

    def finish_upload(self, key: str, size: int, pieces: list, target: str) -> None:
        if not size:
            self.save(key, Empty())
        elif self.storage.size(key) < size:
            raise LostBytes(f"{key} lost staged bytes")
        self.move(key, target)

    def cancel_upload(self, key: str, pieces: list) -> None:
        self.storage.delete(key)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock_path(self.storage.path(key)))


class FileAppend:
    """One piece appended to a session's file, under the session's lock file.

    The lock is held from `__enter__` to `__exit__`: the caller checks the session's
    row, appends and records the new length with no other piece in between.
    """

    def __init__(self, backend: LocalBackend, key: str):
        self.backend, self.key = backend, key
        self.path = backend.storage.path(key)
        self._lock = None

    def __enter__(self) -> FileAppend:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._lock = open(lock_path(self.path), "a")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX)
        except BaseException:
            self._lock.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
        finally:
            self._lock.close()

    def write(self, stream: BinaryIO, start: int, pieces: list) -> list:
        """Append `stream` at byte `start` of the file; the session's pieces (none here)."""
        with open(self.path, "ab") as handle:
            if handle.tell() < start:
                # Acknowledged bytes are not synced until the upload finishes; a crash
                # lost some. Padding the file would corrupt the blob: start again.
                raise LostBytes(f"{self.key} has {handle.tell()} bytes, not {start}")
            # Bytes past the recorded end are from an append that died unrecorded.
            if handle.tell() > start:
                handle.truncate(start)
                handle.seek(start)
            try:
                copy_to_file(stream, handle)
            except BaseException:
                # A piece that failed part-way (a broken or abandoned body, a full
                # disk) is not recorded, so none of it stays: the file ends where the
                # session says, and nothing unaccounted for waits on disk.
                _cut_back(handle, self.key, start)
                raise
        return list(pieces)

    def abandon(self) -> None:
        """The session ended under this append: its bytes belong to nobody now."""
        self.backend.cancel_upload(self.key, [])


class LocalPending:
    """A fully written and synced file beside its path, renamed into place on commit.

    The writer holds an exclusive `flock` on the file from the moment it exists until
    `abort()`, past the commit: a file committed under a staging key is still this
    push's until it has been moved to its blob key. Cleanup's storage walk removes a
    leftover draft only if it can take that lock (ContentStore.abandoned), which it
    can once the writer is gone, killed or not.
    """

    def __init__(self, draft: str, path: str, handle: BinaryIO):
        self.draft, self.path, self.handle, self.done = draft, path, handle, False

    @classmethod
    def write(cls, path: str, stream: BinaryIO) -> LocalPending:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        draft = draft_path(path)
        handle = open(draft, "wb")  # noqa: SIM115 - the pending object closes it
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            copy_to_file(stream, handle)
            # All of it in the file before it is renamed: the handle stays open past that.
            handle.flush()
            if durability.enabled():
                os.fsync(handle.fileno())
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(draft)
            handle.close()
            raise
        return cls(draft, path, handle)

    def commit(self) -> None:
        os.replace(self.draft, self.path)
        self.done = True
        if durability.enabled():
            durability.sync_directory(os.path.dirname(self.path))

    def abort(self) -> None:
        if not self.done:
            self.done = True
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.draft)
        self.handle.close()


def _cut_back(handle, key: str, length: int) -> None:
    try:
        handle.truncate(length)
    except OSError:
        # The next piece cuts the file back before it appends, as after a crash.
        logger.warning("%s: could not cut a failed piece off its file", key)


def _walk_directory(path: str, key: str) -> Iterator[StoredObject]:
    """The files under a directory of the local store, as the directory is read."""
    try:
        entries = os.scandir(path)
    except FileNotFoundError:
        return
    with entries:
        for entry in entries:
            child = f"{key}/{entry.name}"
            try:
                if entry.is_dir(follow_symlinks=False):
                    yield from _walk_directory(entry.path, child)
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed since the directory was read
            yield StoredObject(
                child, stat.st_size, datetime.fromtimestamp(stat.st_mtime, timezone.utc)
            )
