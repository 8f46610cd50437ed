"""OCI distribution errors: each exception knows its code, status and message.

Views raise these; `render_error` is the one place that turns them into
`{"errors": [{"code", "message", "detail"}]}` responses, and `from_domain` the one
place that turns the OCI layer's and image services' errors (`registry.oci.errors`)
into them.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from django.http import HttpResponse

from registry.oci import errors as oci

ERROR_CONTENT_TYPE = "application/json"
# Every /v2 answer carries it, errors included.
API_VERSION_HEADER = "Docker-Distribution-Api-Version"
API_VERSION = "registry/2.0"


class RegistryError(Exception):
    """Base of every error the /v2 API answers with; subclasses set code and status."""

    code = "UNKNOWN"
    status = 500
    message = "unknown error"

    def __init__(
        self,
        message: str | None = None,
        *,
        detail=None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.detail = detail
        self.headers = dict(headers or {})
        if status is not None:
            self.status = status


class StorageFull(RegistryError):
    """No room left on the disk or in the database. The spec has no code for it;
    507 Insufficient Storage tells clients and proxies what kind of 5xx it is.
    """

    status, message = 507, "the registry's storage is full; try again later"


class BlobUnknown(RegistryError):
    code, status, message = "BLOB_UNKNOWN", 404, "blob unknown to registry"


class BlobUploadInvalid(RegistryError):
    code, status, message = "BLOB_UPLOAD_INVALID", 400, "blob upload invalid"


class BlobUploadUnknown(RegistryError):
    code, status, message = "BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry"


class DigestInvalid(RegistryError):
    code, status, message = "DIGEST_INVALID", 400, "provided digest did not match uploaded content"


class ManifestBlobUnknown(RegistryError):
    code, status, message = (
        "MANIFEST_BLOB_UNKNOWN",
        404,
        "manifest references a manifest or blob unknown to registry",
    )


class ManifestInvalid(RegistryError):
    code, status, message = "MANIFEST_INVALID", 400, "manifest invalid"


class ManifestUnknown(RegistryError):
    code, status, message = "MANIFEST_UNKNOWN", 404, "manifest unknown to registry"


class NameInvalid(RegistryError):
    code, status, message = "NAME_INVALID", 400, "invalid repository name"


class NameUnknown(RegistryError):
    code, status, message = "NAME_UNKNOWN", 404, "repository name not known to registry"


class SizeInvalid(RegistryError):
    code, status, message = "SIZE_INVALID", 400, "provided length did not match content length"


class Unauthorized(RegistryError):
    code, status, message = "UNAUTHORIZED", 401, "authentication required"

    def __init__(self, message: str | None = None, *, challenge: str = "", **kwargs):
        super().__init__(message, **kwargs)
        if challenge:
            self.headers["WWW-Authenticate"] = challenge


class Denied(RegistryError):
    code, status, message = "DENIED", 403, "requested access to the resource is denied"


class ManifestReferencedDenied(Denied):
    """A delete refused because an index still lists the manifest. The spec has no code
    for it: DENIED is the spec's word for a refusal, and 409 Conflict (GitLab's status
    for its MANIFEST_REFERENCED) says the request is fine but the state forbids it, so
    clients do not take it for a missing permission (docs/compatibility.md).
    """

    status, message = 409, "the manifest is referenced by an index"


class TooManyRequests(RegistryError):
    code, status, message = "TOOMANYREQUESTS", 429, "too many requests"


class Unsupported(RegistryError):
    code, status, message = "UNSUPPORTED", 405, "the operation is unsupported"


class ParameterInvalid(Unsupported):
    """A query parameter that cannot mean anything; the spec's UNSUPPORTED covers "an
    invalid set of parameters", with 400 as for any malformed request.
    """

    status, message = 400, "invalid query parameter"


class PaginationNumberInvalid(RegistryError):
    """A listing's `n` that is not a count (CNCF Distribution's code for it)."""

    code, status, message = "PAGINATION_NUMBER_INVALID", 400, "invalid number of results requested"


class UploadRangeInvalid(BlobUploadInvalid):
    """A chunk that does not start where the upload ends (416, with the upload's `Range`)."""

    status, message = 416, "chunk does not continue the upload"


class Unavailable(RegistryError):
    """What a mirror lacks and its upstream cannot give now. The spec has no code for it;
    CNCF Distribution's UNAVAILABLE, a 503, says the registry cannot serve it yet.
    """

    code, status, message = "UNAVAILABLE", 503, "the upstream registry is unavailable"


class RouteUnknown(RegistryError):
    """A /v2 path that is no endpoint; the spec names no code, so UNSUPPORTED with 404."""

    code, status, message = "UNSUPPORTED", 404, "no such endpoint"


class RangeNotSatisfiable(RegistryError):
    """A download `Range` outside the blob; the spec names no code for it."""

    code, status, message = "RANGE_NOT_SATISFIABLE", 416, "requested range not satisfiable"


# The spec's code for a status that Django's exception handling chose (a host not
# allowed, a failing middleware); UNKNOWN for the others.
STATUS_CODES = {
    401: "UNAUTHORIZED",
    403: "DENIED",
    404: "UNSUPPORTED",
    405: "UNSUPPORTED",
    429: "TOOMANYREQUESTS",
}


def error_for_status(status: int) -> RegistryError:
    """An error to answer with a status Django decided on, in the spec's format."""
    error = RegistryError(HTTPStatus(status).phrase.lower(), status=status)
    error.code = STATUS_CODES.get(status, RegistryError.code)
    return error


# Each error of the OCI layer and the image services, with the spec's error it is
# answered with and the status when not that error's own.
DOMAIN_ERRORS: dict[type[oci.OciError], tuple[type[RegistryError], int | None]] = {
    oci.InvalidDigest: (DigestInvalid, None),
    oci.DigestMismatch: (DigestInvalid, None),
    oci.InvalidName: (NameInvalid, None),
    oci.InvalidReference: (ManifestInvalid, None),
    oci.InvalidManifest: (ManifestInvalid, None),
    oci.ManifestTooLarge: (ManifestInvalid, 413),
    # The spec's UNSUPPORTED is a 405 for a method; a manifest kind we do not take is
    # a capability we lack, and 501 says so (as CNCF Distribution answers schema 1).
    oci.UnsupportedManifest: (Unsupported, 501),
    oci.SizeMismatch: (SizeInvalid, None),
    oci.RepositoryNotFound: (NameUnknown, None),
    oci.BlobNotFound: (BlobUnknown, None),
    oci.ManifestNotFound: (ManifestUnknown, None),
    oci.ManifestChildNotFound: (ManifestBlobUnknown, None),
    oci.ManifestReferenced: (ManifestReferencedDenied, None),
}


def from_domain(error: oci.OciError) -> RegistryError:
    """The spec's error for an error of the OCI layer or the image services (its
    nearest mapped class decides; one not mapped is the spec's UNKNOWN, a 500).
    """
    for kind in type(error).__mro__:
        if kind in DOMAIN_ERRORS:
            registry_error, status = DOMAIN_ERRORS[kind]
            return registry_error(error.message, detail=error.detail, status=status)
    return RegistryError(error.message, detail=error.detail)


def render_error(error: RegistryError, *, head: bool = False) -> HttpResponse:
    """The JSON body (none for HEAD) and headers of an error response."""
    entry = {"code": error.code, "message": error.message}
    if error.detail is not None:
        entry["detail"] = error.detail
    body = b"" if head else json.dumps({"errors": [entry]}).encode()
    response = HttpResponse(body, status=error.status, content_type=ERROR_CONTENT_TYPE)
    if head:
        response["Content-Length"] = "0"
    for name, value in error.headers.items():
        response[name] = value
    return response
