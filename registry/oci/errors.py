"""The errors of the OCI layer and of the image services: what went wrong, not how to answer it.

Each says what is wrong with content or a name; `registry.errors.from_domain` is the
one place that turns them into the distribution spec's codes and HTTP statuses.
"""

from __future__ import annotations


class OciError(Exception):
    """Base of every error the OCI layer (and the image services on it) raises on purpose.

    `detail` names what the error is about (a digest, a field, a tag), for whoever
    reports it; the views put it in the error body as the spec's `detail`.
    """

    message = "invalid OCI content"

    def __init__(self, message: str | None = None, *, detail=None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.detail = detail


class InvalidDigest(OciError):
    """Not a digest we can verify: bad syntax, an unknown algorithm, a wrong length."""

    message = "invalid digest"


class DigestMismatch(InvalidDigest):
    """Content whose digest is not the one it was named by."""

    message = "provided digest did not match the content"


class InvalidName(OciError):
    """A repository name (owner or image part) that the name rules do not allow."""

    message = "invalid repository name"


class InvalidReference(OciError):
    """A manifest reference that is neither a valid tag nor a digest."""

    message = "invalid tag"


class InvalidManifest(OciError):
    """A manifest body that is not a valid image manifest or index."""

    message = "manifest invalid"


class ManifestTooLarge(InvalidManifest):
    """A manifest body past the size the caller allows."""

    message = "manifest too large"


class UnsupportedManifest(OciError):
    """A manifest of a kind we know but do not take (Docker schema 1)."""

    message = "manifest kind not supported"


class SizeMismatch(OciError):
    """A descriptor whose size is not the size of the content it names."""

    message = "size does not match the content"


class RepositoryNotFound(OciError):
    message = "repository not known"


class BlobNotFound(OciError):
    """A blob the repository neither references nor staged."""

    message = "blob not known"


class ManifestNotFound(OciError):
    message = "manifest not known"


class ManifestChildNotFound(OciError):
    """An index lists a manifest that its repository does not hold."""

    message = "manifest references a manifest not known"


class ManifestReferenced(OciError):
    """A manifest an index in the repository lists: deleting it would break the index."""

    message = "manifest is referenced by an index"


def quoted(value: str, limit: int = 80) -> str:
    """`value` as repr() writes it, cut to `limit`: error messages never echo a megabyte."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
