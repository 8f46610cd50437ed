"""Content-addressed blobs and the upload sessions that produce them."""

import uuid

from django.conf import settings
from django.db import models

from packages_core.models.owners import Owner

# Key names are the content store's; imported here for the models and older callers.
from packages_core.storage.keys import BLOB_KEY, BLOB_PREFIX, blob_key, blob_sha256  # noqa: F401


class PackageBlob(models.Model):
    """Bytes stored once for the whole site, keyed by their sha256."""

    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64, unique=True)
    # Known only for blobs a client named by their sha512 (hashing it costs twice
    # what sha256 does, and almost no client uses it). NULL, not "": unknown.
    sha512 = models.CharField(max_length=128, null=True, blank=True, db_index=True)  # noqa: DJ001
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(sha256__regex=r"^[0-9a-f]{64}$"),
                name="packages_blob_sha256_hex",
            ),
        ]

    def __str__(self) -> str:
        return f"sha256:{self.sha256}"

    @property
    def storage_key(self) -> str:
        return blob_key(self.sha256)


class BlobDeletion(models.Model):
    """A blob whose row garbage collection dropped and whose object is still to go.

    Written in the transaction that drops the row; the object is deleted only after
    that has committed, under a lock on this row. An upload of the same bytes in the
    meantime deletes this row instead, so the object it needs is kept.
    """

    sha256 = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"deletion of sha256:{self.sha256}"


class BlobUpload(models.Model):
    """An upload in progress; any app server can continue it from the stored bytes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(Owner, on_delete=models.CASCADE, related_name="blob_uploads")
    # The package the session was opened for (a container image's name); it may not be
    # used for another.
    package_name = models.CharField(max_length=255)
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    bytes_received = models.PositiveBigIntegerField(default=0)
    # The running SHA-256 after `bytes_received` bytes, sealed with an HMAC: the next
    # piece, on any worker or node, hashes on from it (services/uploads.py). Empty
    # when there is none to go on from; finishing then hashes the staged bytes once.
    hash_state = models.BinaryField(blank=True, default=b"", editable=False)
    storage_key = models.CharField(max_length=255, editable=False)
    # On object storage, the pieces received so far, in order: [[key, size], ...].
    pieces = models.JSONField(default=list, blank=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated"]
        indexes = [models.Index(fields=["updated"])]

    def __str__(self) -> str:
        return f"upload {self.id} to {self.owner.name}/{self.package_name}"
