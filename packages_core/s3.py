"""What only S3 can do for the content store: server-side copies, multipart assembly.

Also ranged reads and presigned URLs, all through the boto3 objects of django-storages'
S3Storage.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import BinaryIO

import botocore.loaders
from botocore.exceptions import ClientError
from django.core.files.storage import Storage
from storages.backends import s3 as storages_s3
from storages.utils import clean_name

# S3's multipart limits: every part but the last at least 5 MiB, none over 5 GiB.
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_SIZE = 5 * 1024 * 1024 * 1024
# Parts of streamed uploads: one is sent while the next is read, so an upload holds
# at most two in memory.
UPLOAD_PART_SIZE = 8 * 1024 * 1024
READ_SIZE = 1024 * 1024
# Server-side part copies in flight at once when pieces are assembled.
COPY_CONCURRENCY = 4
# Keys one DeleteObjects request may name.
DELETE_BATCH = 1000


_loader = None
_loader_lock = threading.Lock()


def _shared_loader():
    global _loader
    with _loader_lock:
        if _loader is None:
            _loader = botocore.loaders.create_loader()
        return _loader


class S3Storage(storages_s3.S3Storage):
    """django-storages' S3 storage, with the AWS service models loaded once per process.

    It makes a boto3 session per thread, and each session would parse botocore's JSON
    models again: about 12 MiB per thread of every gunicorn worker.
    """

    def _create_session(self):
        session = super()._create_session()
        session._session.register_component("data_loader", _shared_loader())
        return session


@contextmanager
def missing_as_file_not_found(name: str):
    """S3's "no such key" (on a read, or the source of a copy) as FileNotFoundError."""
    try:
        yield
    except ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.response.get("Error", {}).get("Code")
        if status == 404 or code in ("NoSuchKey", "404"):
            raise FileNotFoundError(name) from error
        raise


def _error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


class S3Objects:
    """Object operations on the bucket behind an S3Storage, by storage name."""

    def __init__(self, storage: Storage):
        self.storage = storage

    @property
    def bucket(self):
        return self.storage.bucket

    @property
    def client(self):
        return self.storage.connection.meta.client

    def key(self, name: str) -> str:
        """The object key for a storage name (with the storage's `location` prefix)."""
        return self.storage._normalize_name(clean_name(name))

    def list_objects(self, prefix: str, page_size: int) -> Iterator[list[tuple]]:
        """(name, size, last modified) of the objects under the folder `prefix`, a page
        of ListObjectsV2 at a time, following its continuation tokens.
        """
        root = self.key(f"{prefix}/")
        arguments = {"Bucket": self.bucket.name, "Prefix": root, "MaxKeys": page_size}
        while True:
            answer = self.client.list_objects_v2(**arguments)
            page = [
                (f"{prefix}/{entry['Key'][len(root) :]}", entry["Size"], entry["LastModified"])
                for entry in answer.get("Contents", [])
            ]
            if page:
                yield page
            if not answer.get("IsTruncated"):
                return
            arguments["ContinuationToken"] = answer["NextContinuationToken"]

    def list_multipart(self, prefix: str, page_size: int) -> Iterator[list[tuple]]:
        """(name, upload id, initiated) of the multipart uploads in progress under the
        folder `prefix`, a page of ListMultipartUploads at a time, following its markers.
        """
        root = self.key(f"{prefix}/")
        arguments = {"Bucket": self.bucket.name, "Prefix": root, "MaxUploads": page_size}
        while True:
            answer = self.client.list_multipart_uploads(**arguments)
            page = [
                (f"{prefix}/{entry['Key'][len(root) :]}", entry["UploadId"], entry["Initiated"])
                for entry in answer.get("Uploads", [])
            ]
            if page:
                yield page
            if not answer.get("IsTruncated"):
                return
            arguments["KeyMarker"] = answer["NextKeyMarker"]
            arguments["UploadIdMarker"] = answer["NextUploadIdMarker"]

    def multipart_size(self, name: str, upload_id: str) -> int:
        """The bytes in the parts a multipart upload has received so far (0 if it is gone)."""
        arguments = {"Bucket": self.bucket.name, "Key": self.key(name), "UploadId": upload_id}
        size = 0
        while True:
            try:
                answer = self.client.list_parts(**arguments)
            except ClientError as error:
                if _error_code(error) == "NoSuchUpload":
                    return size
                raise
            size += sum(part["Size"] for part in answer.get("Parts", []))
            if not answer.get("IsTruncated"):
                return size
            arguments["PartNumberMarker"] = answer["NextPartNumberMarker"]

    def abort_multipart(self, name: str, upload_id: str) -> None:
        """Abort a multipart upload; one completed or aborted meanwhile is not an error."""
        try:
            self.client.abort_multipart_upload(
                Bucket=self.bucket.name, Key=self.key(name), UploadId=upload_id
            )
        except ClientError as error:
            if _error_code(error) != "NoSuchUpload":
                raise

    def delete_many(self, names: list[str]) -> None:
        """Delete objects, a thousand to a request; missing ones are not an error."""
        for start in range(0, len(names), DELETE_BATCH):
            batch = names[start : start + DELETE_BATCH]
            answer = self.client.delete_objects(
                Bucket=self.bucket.name,
                Delete={"Objects": [{"Key": self.key(name)} for name in batch], "Quiet": True},
            )
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise OSError(
                    f"S3 did not delete {len(answer['Errors'])} objects, e.g. "
                    f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )

    def copy(self, source: str, target: str) -> None:
        """A server-side copy (multipart past 5 GB); no byte passes through this process."""
        with missing_as_file_not_found(source):
            self.bucket.copy(
                {"Bucket": self.bucket.name, "Key": self.key(source)}, self.key(target)
            )

    def save(self, name: str, stream: BinaryIO) -> None:
        """Write a stream of unknown length to `name`."""
        self.begin(name, stream).commit()

    def begin(self, name: str, stream: BinaryIO):
        """Write a stream of unknown length for `name`, holding at most two parts in
        memory; it appears at `name` only when the returned object is committed.

        A stream shorter than one part stays in memory and is put on commit. A longer
        one becomes a multipart upload of `name`, each 8 MiB part sent while the next
        is read (boto3's managed upload buffers up to ten parts of a non-seekable
        stream); commit completes it, abort throws it away. S3 shows no object until a
        multipart upload completes.
        """
        first = _read_part(stream)
        key = self.key(name)
        if len(first) < UPLOAD_PART_SIZE:
            return _BufferedPending(self, key, bytes(first))
        # One client for both threads: boto3 clients may be shared, and django-storages
        # would otherwise build a new session and connection pool for the sender.
        client = self.client
        upload_id = client.create_multipart_upload(Bucket=self.bucket.name, Key=key)["UploadId"]
        pending = _MultipartPending(self, client, key, upload_id)
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="s3-part") as sender:
                part, number, sending = first, 0, None
                while part:
                    number += 1
                    if sending is not None:
                        pending.parts.append(sending.result())
                    sending = sender.submit(self._upload_part, client, key, upload_id, number, part)
                    part = _read_part(stream)
                pending.parts.append(sending.result())
        except BaseException:
            pending.abort()
            raise
        return pending

    def _upload_part(self, client, key: str, upload_id: str, number: int, data: bytearray) -> dict:
        answer = client.upload_part(
            Bucket=self.bucket.name,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=bytes(data),
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def read(self, name: str, start: int = 0, end: int | None = None) -> BinaryIO:
        """A stream of the object's bytes start..end (inclusive), fetched as it is read."""
        extra = {}
        if start or end is not None:
            extra["Range"] = f"bytes={start}-{'' if end is None else end}"
        with missing_as_file_not_found(name):
            answer = self.client.get_object(Bucket=self.bucket.name, Key=self.key(name), **extra)
        return answer["Body"]

    def url(self, name: str, *, method: str, expire: int, content_type: str = "") -> str:
        parameters = {"ResponseContentType": content_type} if content_type else None
        return self.storage.url(name, parameters=parameters, expire=expire, http_method=method)

    def compose(self, target: str, sources: Iterable[tuple[str, int]]) -> None:
        """Write the concatenation of `sources` (name, size) to `target`.

        Pieces of at least 5 MiB become parts by server-side copy (UploadPartCopy).
        Smaller pieces are gathered, by ranged reads, into parts of 5 MiB, so only
        bytes of small pieces ever pass through this process, at most 5 MiB at a time.
        """
        sources = [(name, size) for name, size in sources if size > 0]
        if len(sources) == 1:
            self.copy(sources[0][0], target)
            return
        if not sources:
            self.client.put_object(Bucket=self.bucket.name, Key=self.key(target), Body=b"")
            return
        upload = self.client.create_multipart_upload(Bucket=self.bucket.name, Key=self.key(target))
        assembly = _Assembly(self, self.key(target), upload["UploadId"])
        try:
            for name, size in sources:
                assembly.add(name, size)
            assembly.finish()
        except BaseException:
            assembly.close()
            self.client.abort_multipart_upload(
                Bucket=self.bucket.name, Key=self.key(target), UploadId=upload["UploadId"]
            )
            raise
        finally:
            assembly.close()


class _BufferedPending:
    """A small object in memory, put on commit."""

    def __init__(self, objects: S3Objects, key: str, data: bytes):
        self.objects, self.key, self.data = objects, key, data

    def commit(self) -> None:
        self.objects.client.put_object(
            Bucket=self.objects.bucket.name, Key=self.key, Body=self.data
        )
        self.data = None

    def abort(self) -> None:
        self.data = None


class _MultipartPending:
    """A multipart upload with every part sent, completed on commit."""

    def __init__(self, objects: S3Objects, client, key: str, upload_id: str):
        self.objects, self.client, self.key, self.upload_id = objects, client, key, upload_id
        self.parts: list[dict] = []
        self.done = False

    def commit(self) -> None:
        self.client.complete_multipart_upload(
            Bucket=self.objects.bucket.name,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},
        )
        self.done = True

    def abort(self) -> None:
        if not self.done:
            self.done = True
            self.client.abort_multipart_upload(
                Bucket=self.objects.bucket.name, Key=self.key, UploadId=self.upload_id
            )


def _read_part(stream: BinaryIO) -> bytearray:
    """Up to UPLOAD_PART_SIZE bytes of the stream (fewer only at its end)."""
    part = bytearray()
    while len(part) < UPLOAD_PART_SIZE:
        data = stream.read(min(READ_SIZE, UPLOAD_PART_SIZE - len(part)))
        if not data:
            break
        part += data
    return part


class _Assembly:
    """The parts of one multipart upload, built from pieces in order.

    Server-side part copies run COPY_CONCURRENCY at a time (S3 copies each at its own
    pace; one after another, a push of many chunks would wait for the sum of them).
    Parts made of small pieces are sent as they fill. Part numbers follow the pieces'
    order whatever order the copies finish in.
    """

    def __init__(self, objects: S3Objects, key: str, upload_id: str):
        self.objects, self.key, self.upload_id = objects, key, upload_id
        self.client = objects.client
        self.parts: list = []  # part dicts, or futures of them
        self.buffer = bytearray()
        self.copier = ThreadPoolExecutor(COPY_CONCURRENCY, thread_name_prefix="s3-copy")

    def add(self, name: str, size: int) -> None:
        position = 0
        while position < size:
            remaining = size - position
            if not self.buffer and remaining >= MIN_PART_SIZE:
                length = min(remaining, MAX_PART_SIZE)
                number = len(self.parts) + 1
                self.parts.append(
                    self.copier.submit(
                        self._copy_part, number, name, position, position + length - 1
                    )
                )
            else:
                length = min(remaining, MIN_PART_SIZE - len(self.buffer))
                with self.objects.read(name, position, position + length - 1) as body:
                    self.buffer += body.read()
                if len(self.buffer) >= MIN_PART_SIZE:
                    self._upload_buffer()
            position += length

    def finish(self) -> None:
        if self.buffer:
            self._upload_buffer()
        parts = [part.result() if isinstance(part, Future) else part for part in self.parts]
        self.client.complete_multipart_upload(
            Bucket=self.objects.bucket.name,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": parts},
        )

    def close(self) -> None:
        """Wait for copies still running (after a failure, before the upload is aborted)."""
        self.copier.shutdown(wait=True, cancel_futures=True)

    def _copy_part(self, number: int, name: str, first: int, last: int) -> dict:
        with missing_as_file_not_found(name):
            answer = self.client.upload_part_copy(
                Bucket=self.objects.bucket.name,
                Key=self.key,
                UploadId=self.upload_id,
                PartNumber=number,
                CopySource={"Bucket": self.objects.bucket.name, "Key": self.objects.key(name)},
                CopySourceRange=f"bytes={first}-{last}",
            )
        return {"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]}

    def _upload_buffer(self) -> None:
        number = len(self.parts) + 1
        answer = self.client.upload_part(
            Bucket=self.objects.bucket.name,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=bytes(self.buffer),
        )
        self.parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        self.buffer = bytearray()
