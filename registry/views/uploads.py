"""Blob uploads: starting (or mounting, or monolithic), appending, finishing, cancelling."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.http import HttpResponse

from packages_core.models import BlobUpload
from packages_core.services import quotas, uploads
from registry import bearer, images, serving
from registry.errors import BlobUploadUnknown, DigestInvalid, UploadRangeInvalid
from registry.images import is_valid_repository
from registry.oci.digests import Digest, parse_digest
from registry.oci.errors import BlobNotFound, InvalidDigest
from registry.request_body import RequestBody
from registry.views.base import RegistryView, byte_range


class BlobReceiving(RegistryView):
    """What the views that take a blob's bytes share."""

    def store_whole(self, body: RequestBody, digest: Digest) -> None:
        """Store a whole blob from the body, refused unless it has `digest` and fits the
        owner's quota (a chunked body declares no length: checked before it is kept).
        """
        if body.length is not None:
            self.check_quota(body.length)
        serving.store_verified(
            body,
            digest,
            check=lambda digests: self.check_quota(digests.size),
            claim=_staging_claim(self),
        )


class UploadStartView(BlobReceiving):
    """`POST .../blobs/uploads/`: a cross-repo mount, a monolithic upload, or a new session."""

    def post(self, request):
        mount, source = request.GET.get("mount", "").strip(), request.GET.get("from", "").strip()
        if mount and source and self.mount(mount, source):
            return blob_created(self, mount)
        digest = request.GET.get("digest", "").strip()
        if digest:
            self.store_whole(RequestBody(request), parse_digest(digest))
            return blob_created(self, digest)
        upload = uploads.start_upload(self.owner, self.image, creator=self.creator)
        return upload_response(self, upload, status=202)

    def mount(self, digest: str, source: str) -> bool:
        """Stage `source`'s blob here; False (a new session follows) if it cannot be done.

        A `from` that cannot name a repository is one more mount that cannot be done,
        as the spec (and CNCF Distribution) answers it, not an error.
        """
        if not is_valid_repository(source.lower()):
            return False
        if not self.identity.grants(source, bearer.PULL):
            return False
        try:
            blob = images.readable_blob_elsewhere(
                self.identity.user, self.identity.token, parse_digest(digest), source
            )
            if blob is None:
                return False
            images.stage_blob(self.owner, self.image, blob, creator=self.creator)
        except (InvalidDigest, BlobNotFound):
            return False
        return True


class UploadView(BlobReceiving):
    """One upload session: status, append a chunk, finish, cancel."""

    def find_upload(self, upload_id: str) -> BlobUpload:
        try:
            return BlobUpload.objects.get(pk=upload_id, owner=self.owner, package_name=self.image)
        except (BlobUpload.DoesNotExist, ValidationError, ValueError):
            raise BlobUploadUnknown(detail={"uuid": upload_id}) from None

    def get(self, request, upload_id):
        return upload_response(self, self.find_upload(upload_id), status=204)

    def patch(self, request, upload_id):
        upload = self.find_upload(upload_id)
        body = RequestBody(request)
        offset = chunk_offset(request, body, upload)
        upload = self.append(upload, body, offset)
        return upload_response(self, upload, status=202)

    def put(self, request, upload_id):
        upload = self.find_upload(upload_id)
        raw_digest = request.GET.get("digest", "").strip()
        if not raw_digest:
            raise DigestInvalid("the digest query parameter is required to finish an upload")
        digest = parse_digest(raw_digest)
        body = RequestBody(request)
        if not body.is_empty:
            offset = chunk_offset(request, body, upload)
            if not upload.bytes_received and not offset:
                # The whole blob in the closing PUT (a monolithic push): stored as a
                # POST ?digest= is, straight for its key, and the empty session ends.
                self.store_whole(body, digest)
                uploads.discard_upload(upload)
                return blob_created(self, str(digest))
            upload = self.append(upload, body, offset)
        self.check_quota(upload.bytes_received)
        digests = uploads.upload_digests(upload, sha512=digest.algorithm == "sha512")
        serving.check_digest(digests, digest)
        uploads.complete_upload(upload, digests, claim=_staging_claim(self))
        return blob_created(self, str(digest))

    def delete(self, request, upload_id):
        uploads.discard_upload(self.find_upload(upload_id))
        return HttpResponse(status=204)

    def append(self, upload: BlobUpload, body: RequestBody, offset: int | None) -> BlobUpload:
        """Add a chunk within the owner's quota: checked on its declared length first,
        then on what arrived (a chunked body declares none). Over it, the upload ends.
        """
        if body.length is not None:
            self.check_quota(upload.bytes_received + body.length)
        try:
            upload = uploads.append_to_upload(
                upload, body, offset=offset, expected_bytes=body.length
            )
        except UploadRangeInvalid as error:
            # Nothing of the chunk was kept: the upload is where it was (the row,
            # reread as the append began, says where).
            error.headers.setdefault("Range", byte_range(upload.bytes_received))
            raise
        try:
            self.check_quota(upload.bytes_received)
        except quotas.QuotaExceeded:
            uploads.discard_upload(upload)
            raise
        return upload


def _staging_claim(view: RegistryView):
    return images.staging_claim(view.owner, view.image, creator=view.creator)


def blob_created(view: RegistryView, digest: str) -> HttpResponse:
    response = HttpResponse(status=201)
    response["Location"] = view.repository_url(f"blobs/{digest}")
    response["Docker-Content-Digest"] = digest
    return response


def upload_response(view: RegistryView, upload: BlobUpload, *, status: int) -> HttpResponse:
    response = HttpResponse(status=status)
    response["Location"] = view.repository_url(f"blobs/uploads/{upload.id}")
    response["Range"] = byte_range(upload.bytes_received)
    response["Docker-Upload-UUID"] = str(upload.id)
    response["Content-Length"] = "0"
    return response


# `start-end` (inclusive), also with the unit (`bytes start-end`, `bytes=start-end`) and
# a total (`/size` or `/*`), which is not checked. ASCII digits, at most 19 (int64):
# int() would also take other scripts' digits, and spend long on thousands of them.
CONTENT_RANGE_PATTERN = re.compile(
    r"(?:bytes[ =]*)?([0-9]{1,19})-([0-9]{1,19})(?:/(?:[0-9]{1,19}|\*))?", re.IGNORECASE
)


def parse_content_range(header: str) -> tuple[int, int] | None:
    """(start, end) of a `Content-Range: <start>-<end>` chunk, or None without one;
    UploadRangeInvalid for anything else.
    """
    header = header.strip()
    if not header:
        return None
    match = CONTENT_RANGE_PATTERN.fullmatch(header)
    if match is None or int(match[2]) < int(match[1]):
        raise UploadRangeInvalid(f"invalid Content-Range {header[:100]!r}")
    return int(match[1]), int(match[2])


def chunk_offset(request, body: RequestBody, upload: BlobUpload) -> int | None:
    """Where a chunk says it starts (None: at the end). A Content-Range must cover
    exactly the body: 416 before a byte is read when the Content-Length disagrees,
    and, for a chunked body, as soon as it is longer or shorter (nothing of it kept).
    """

    def mismatch(message: str) -> UploadRangeInvalid:
        return UploadRangeInvalid(message, headers={"Range": byte_range(upload.bytes_received)})

    try:
        chunk = parse_content_range(request.META.get("HTTP_CONTENT_RANGE", ""))
    except UploadRangeInvalid as error:
        raise mismatch(error.message) from None
    if chunk is None:
        return None
    start, end = chunk
    body.require_length(end - start + 1, mismatch)
    return start
