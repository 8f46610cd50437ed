"""The backend for S3 (django-storages' S3Storage): multipart uploads, server-side copies.

Upload sessions keep one object per piece as on any storage (storage/generic.py), but
finishing assembles them on the server (packages_core/s3.py), and a blob written for
its key is a multipart upload that appears only when completed. Imported only when
the storage is S3, so a site without boto3 never loads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from django.core.files.storage import Storage

from packages_core.s3 import S3Objects
from packages_core.storage.generic import StorageBackend
from packages_core.storage.objects import IncompleteUpload, PendingObject, StoredObject


class S3Backend(StorageBackend):
    """Objects in the bucket behind an S3Storage, by storage name."""

    def __init__(self, storage: Storage):
        super().__init__(storage)
        self.s3 = S3Objects(storage)

    def begin(self, key: str, stream: BinaryIO) -> PendingObject:
        return self.s3.begin(key, stream)

    def reader(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO:
        """Fetched as it is read: django-storages' files download the whole object."""
        return self.s3.read(key, start, end)

    def delete_many(self, keys: list[str]) -> None:
        self.s3.delete_many(keys)

    def move(self, source: str, target: str) -> None:
        self.s3.copy(source, target)
        self.storage.delete(source)

    def compose(self, target: str, sources: list[tuple[str, int]]) -> None:
        self.s3.compose(target, sources)

    def url(self, key: str, *, method: str, expire: int, content_type: str) -> str:
        return self.s3.url(key, method=method, expire=expire, content_type=content_type)

    def list_objects(self, prefix: str, page_size: int) -> Iterator[list[StoredObject]]:
        for page in self.s3.list_objects(prefix, page_size):
            yield [StoredObject(*entry) for entry in page]

    def incomplete_uploads(self, prefix: str, page_size: int) -> Iterator[list[IncompleteUpload]]:
        for page in self.s3.list_multipart(prefix, page_size):
            yield [IncompleteUpload(*entry) for entry in page]

    def incomplete_size(self, upload: IncompleteUpload) -> int:
        return self.s3.multipart_size(upload.key, upload.upload_id)

    def abort_incomplete(self, upload: IncompleteUpload) -> None:
        self.s3.abort_multipart(upload.key, upload.upload_id)
