"""Sending blobs and manifests to clients, and checking what they sent us.

The one place that picks between a redirect to the storage's own URL, a file the
server can `sendfile()`, and a ranged stream.
"""

from __future__ import annotations

import re

from django.http import FileResponse, HttpResponse, HttpResponseRedirect, StreamingHttpResponse

from packages_core.connections import release_db_connections
from packages_core.content_store import CHUNK_SIZE, ContentStore
from packages_core.hashing import Digests
from packages_core.models import PackageBlob
from packages_core.services.blobs import StoredBlob, store_blob
from registry.conf import registry_settings
from registry.digests import Digest, looks_like_digest
from registry.errors import BlobUnknown, DigestInvalid, RangeNotSatisfiable
from registry.images import FoundManifest
from registry.request_body import RequestBody

BLOB_CONTENT_TYPE = "application/octet-stream"
RANGE_PATTERN = re.compile(r"\Abytes=(\d*)-(\d*)\Z")


def check_digest(digests: Digests, wanted: Digest) -> None:
    actual = getattr(digests, wanted.algorithm)
    if actual != wanted.hex:
        raise DigestInvalid(
            f"content has {wanted.algorithm}:{actual}, not {wanted}",
            detail={"digest": str(wanted)},
        )


def store_verified(stream: RequestBody, wanted: Digest) -> StoredBlob:
    """Store a whole blob from a request, refusing it unless it has the promised digest."""
    return store_blob(
        stream,
        verify=lambda digests: check_digest(digests, wanted),
        expected_bytes=stream.length,
    )


def content_headers(response: HttpResponse, digest: str, size: int) -> HttpResponse:
    response["Docker-Content-Digest"] = digest
    response["ETag"] = f'"{digest}"'
    response["Content-Length"] = str(size)
    return response


def blob_head(blob: PackageBlob, digest: str) -> HttpResponse:
    response = HttpResponse(content_type=BLOB_CONTENT_TYPE)
    response["Accept-Ranges"] = "bytes"
    return content_headers(response, digest, blob.size)


def blob_response(request, blob: PackageBlob, digest: str) -> HttpResponse:
    """The blob's bytes: redirected, sent whole, or the part a `Range` header asks for."""
    store = ContentStore.default()
    if registry_settings.REDIRECT_BLOBS:
        url = store.url(
            blob.storage_key, method=request.method, expire=registry_settings.REDIRECT_EXPIRY
        )
        if url:
            response = HttpResponseRedirect(url, status=307)
            response["Docker-Content-Digest"] = digest
            return response
    span = parse_range(request.META.get("HTTP_RANGE", ""), blob.size)
    try:
        handle = store.open(blob.storage_key)
    except FileNotFoundError:
        raise BlobUnknown(f"blob {digest} is missing from storage") from None
    release_db_connections(blob.size if span is None else span[1] - span[0] + 1)
    if span is None:
        # FileResponse hands a real file to the server's sendfile().
        response = FileResponse(handle, content_type=BLOB_CONTENT_TYPE)
        del response["Content-Disposition"]
        response["Accept-Ranges"] = "bytes"
        return content_headers(response, digest, blob.size)
    start, end = span
    handle.seek(start)
    response = StreamingHttpResponse(
        read_span(handle, end - start + 1), status=206, content_type=BLOB_CONTENT_TYPE
    )
    response["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
    response["Accept-Ranges"] = "bytes"
    content_headers(response, digest, end - start + 1)
    return response


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive (start, end) a `Range: bytes=...` header asks for, or None for all.

    Several ranges, or a header we do not understand, get the whole blob, as RFC 9110
    allows; a range outside the blob is 416.
    """
    match = RANGE_PATTERN.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        start, end = max(size - int(last), 0), size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise RangeNotSatisfiable(
            f"range {header!r} is outside the blob's {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return start, end


def read_span(handle, length: int):
    try:
        while length > 0:
            data = handle.read(min(CHUNK_SIZE, length))
            if not data:
                break
            length -= len(data)
            yield data
    finally:
        handle.close()


def manifest_response(found: FoundManifest, reference: str, *, head: bool) -> HttpResponse:
    """The manifest as stored; `Docker-Content-Digest` is the digest asked for, if one was."""
    if head:
        response = HttpResponse(content_type=found.manifest.media_type)
    else:
        with ContentStore.default().open(found.blob.storage_key) as handle:
            response = HttpResponse(handle.read(), content_type=found.manifest.media_type)
    digest = reference if looks_like_digest(reference) else found.manifest.digest
    return content_headers(response, digest, found.blob.size)
