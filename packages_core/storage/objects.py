"""What the content store's backends hand back: listed objects, pending writes, lost bytes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from packages_core.exceptions import InvalidInput


@dataclass(frozen=True)
class StoredObject:
    """An object found by listing the store: its key, size and last change (UTC)."""

    key: str
    size: int
    modified: datetime


@dataclass(frozen=True)
class IncompleteUpload:
    """An S3 multipart upload started for `key` and neither completed nor aborted."""

    key: str
    upload_id: str
    initiated: datetime


class PendingObject(Protocol):
    """Bytes written for a key and not yet there (ContentStore.begin)."""

    def commit(self) -> None: ...

    def abort(self) -> None:
        """Throw the bytes away, unless they were committed; either way let go of what
        is held for them. Call it when done, in a `finally`.
        """


class LostBytes(InvalidInput):
    """Fewer staged bytes than the upload session recorded."""


def pages(items, size: int):
    """`items` in lists of at most `size`, as they are read."""
    page = []
    for item in items:
        page.append(item)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page
