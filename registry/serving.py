"""Sending blobs and manifests to clients, and checking what they sent us.

The one place that chooses how bytes leave: a 307 to the storage's own presigned URL,
an X-Accel-Redirect for nginx, a file the server can `sendfile()`, or a stream read
from the store as it goes, whole or ranged.
"""

from __future__ import annotations

import re

from django.http import FileResponse, HttpResponse, HttpResponseRedirect, StreamingHttpResponse

from packages_core.connections import release_db_connections
from packages_core.content_store import CHUNK_SIZE, ContentStore
from packages_core.hashing import Digests
from packages_core.models import PackageBlob
from packages_core.services.blobs import Claim, StoredBlob, store_blob
from registry.conf import registry_settings
from registry.errors import BlobUnknown, DigestInvalid, ManifestUnknown, RangeNotSatisfiable
from registry.images import FoundManifest
from registry.oci.digests import Digest, looks_like_digest
from registry.request_body import RequestBody

BLOB_CONTENT_TYPE = "application/octet-stream"
# ASCII digits only: `\d` and int() would take other scripts' digits too.
RANGE_PATTERN = re.compile(r"\Abytes=([0-9]*)-([0-9]*)\Z")
# A position past any blob; longer numbers are not converted (int() of thousands of
# digits is slow, and Python refuses past 4300).
PAST_ANY_BLOB = 2**63
MAX_POSITION_DIGITS = 19


def check_digest(digests: Digests, wanted: Digest) -> None:
    actual = getattr(digests, wanted.algorithm)
    if actual != wanted.hex:
        raise DigestInvalid(
            f"content has {wanted.algorithm}:{actual}, not {wanted}",
            detail={"digest": str(wanted)},
        )


def store_verified(
    stream: RequestBody, wanted: Digest, *, check=None, claim: Claim | None = None
) -> StoredBlob:
    """Store a whole blob from a request, refusing it unless it has the promised digest
    and `check(digests)` raises nothing; `claim` as for `register_blob`.
    """

    def verify(digests: Digests) -> None:
        check_digest(digests, wanted)
        if check is not None:
            check(digests)

    return store_blob(
        stream,
        verify=verify,
        expected_bytes=stream.length,
        claim=claim,
        sha512=wanted.algorithm == "sha512",
        sha256=wanted.hex if wanted.algorithm == "sha256" else None,
    )


def content_headers(response: HttpResponse, digest: str, size: int) -> HttpResponse:
    response["Docker-Content-Digest"] = digest
    response["ETag"] = f'"{digest}"'
    response["Content-Length"] = str(size)
    return response


def blob_head(blob: PackageBlob, digest: str) -> HttpResponse:
    """Answered from the database alone: a HEAD is never redirected."""
    response = HttpResponse(content_type=BLOB_CONTENT_TYPE)
    response["Accept-Ranges"] = "bytes"
    return content_headers(response, digest, blob.size)


def direct_url(request, key: str, content_type: str) -> str | None:
    """The storage's own URL for a GET, when serving direct is on and it has one."""
    if not registry_settings.SERVE_DIRECT:
        return None
    return ContentStore.default().url(
        key,
        method=request.method,
        expire=int(registry_settings.URL_EXPIRY),
        content_type=content_type,
    )


def redirect(url: str, digest: str) -> HttpResponse:
    response = HttpResponseRedirect(url, status=307)
    response["Docker-Content-Digest"] = digest
    return response


def blob_response(request, blob: PackageBlob, digest: str) -> HttpResponse:
    """The blob's bytes: redirected, handed to nginx, sent whole, or the part asked for."""
    url = direct_url(request, blob.storage_key, BLOB_CONTENT_TYPE)
    if url:
        return redirect(url, digest)
    store = ContentStore.default()
    span = parse_range(request.META.get("HTTP_RANGE", ""), blob.size)
    path = store.local_path(blob.storage_key)
    prefix = registry_settings.ACCEL_REDIRECT_PREFIX
    if path is not None and prefix:
        # nginx sends the file (and answers Range itself); no bytes pass through here.
        response = HttpResponse(content_type=BLOB_CONTENT_TYPE)
        response["X-Accel-Redirect"] = prefix.rstrip("/") + "/" + blob.storage_key
        response["Docker-Content-Digest"] = digest
        response["ETag"] = f'"{digest}"'
        return response
    release_db_connections(blob.size if span is None else span[1] - span[0] + 1)
    if span is None and path is not None:
        try:
            handle = open(path, "rb")  # noqa: SIM115 - FileResponse closes it
        except FileNotFoundError:
            raise BlobUnknown(f"blob {digest} is missing from storage") from None
        # FileResponse hands a real file to the server's sendfile().
        response = FileResponse(handle, content_type=BLOB_CONTENT_TYPE)
        del response["Content-Disposition"]
        response["Accept-Ranges"] = "bytes"
        return content_headers(response, digest, blob.size)
    start, end = span if span is not None else (0, blob.size - 1)
    try:
        stream = store.reader(blob.storage_key, start, end) if blob.size else None
    except (FileNotFoundError, OSError) as error:
        raise BlobUnknown(f"blob {digest} cannot be read from storage: {error}") from None
    response = StreamingHttpResponse(
        read_stream(stream, end - start + 1) if stream is not None else iter(()),
        status=206 if span is not None else 200,
        content_type=BLOB_CONTENT_TYPE,
    )
    if span is not None:
        response["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
    response["Accept-Ranges"] = "bytes"
    return content_headers(response, digest, end - start + 1)


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
        start, end = max(size - _position(last), 0), size - 1
    else:
        start = _position(first)
        end = min(_position(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise RangeNotSatisfiable(
            f"range {header[:100]!r} is outside the blob's {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return start, end


def _position(digits: str) -> int:
    return int(digits) if len(digits) <= MAX_POSITION_DIGITS else PAST_ANY_BLOB


def read_stream(stream, length: int):
    try:
        while length > 0:
            data = stream.read(min(CHUNK_SIZE, length))
            if not data:
                break
            length -= len(data)
            yield data
    finally:
        stream.close()


def manifest_response(request, found: FoundManifest, reference: str, *, head: bool) -> HttpResponse:
    """The manifest as stored; `Docker-Content-Digest` is the digest asked for, if one was."""
    media_type = found.media_type
    digest = reference if looks_like_digest(reference) else found.digest
    if head:
        return content_headers(HttpResponse(content_type=media_type), digest, found.size)
    url = direct_url(request, found.storage_key, media_type)
    if url:
        return redirect(url, digest)
    try:
        with ContentStore.default().reader(found.storage_key) as handle:
            response = HttpResponse(handle.read(), content_type=media_type)
    except FileNotFoundError:
        # Deleted and collected since it was looked up.
        raise ManifestUnknown(
            f"manifest {reference} is gone", detail={"reference": reference}
        ) from None
    return content_headers(response, digest, found.size)
