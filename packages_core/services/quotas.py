"""Quotas: how many versions and bytes an owner may keep, and how large one blob may be.

Limits come from the site settings (`PACKAGES["QUOTA_*"]`, -1 for unlimited) unless the
owner has an `OwnerQuota` row with its own. Site admins are never limited.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db.models import Sum

from packages_core.adapter import is_site_admin
from packages_core.conf import packages_settings
from packages_core.exceptions import PackagesError
from packages_core.models import Owner, OwnerQuota, Package, PackageBlob, PackageFile
from packages_core.models.limits import UNLIMITED

logger = logging.getLogger(__name__)


class QuotaExceeded(PackagesError):
    """Storing this would pass one of the owner's limits; the message says which."""


@dataclass(frozen=True)
class Limits:
    versions: int
    bytes: int
    blob_bytes: int


@dataclass(frozen=True)
class Usage:
    versions: int
    bytes: int


def limits_for(owner: Owner) -> Limits:
    override = OwnerQuota.objects.filter(owner=owner).first()

    def pick(field: str, setting: str) -> int:
        own = getattr(override, field, None) if override is not None else None
        return int(own if own is not None else getattr(packages_settings, setting))

    return Limits(
        versions=pick("max_versions", "QUOTA_OWNER_VERSIONS"),
        bytes=pick("max_bytes", "QUOTA_OWNER_BYTES"),
        blob_bytes=pick("max_blob_bytes", "QUOTA_BLOB_BYTES"),
    )


def usage(owner: Owner) -> Usage:
    """Published versions, and the bytes of the distinct blobs the owner's files use
    (staged uploads included: they take space too).
    """
    versions = Package.objects.filter(owner=owner).aggregate(total=Sum("version_count"))["total"]
    # A semi-join on the blob ids (not DISTINCT over whole blob rows, which sorted every
    # file's blob: twice as slow at 36,000 files).
    used = PackageFile.objects.filter(package__owner=owner).values("blob_id")
    size = PackageBlob.objects.filter(pk__in=used).aggregate(total=Sum("size"))["total"]
    return Usage(versions=int(versions or 0), bytes=int(size or 0))


def _exceeded(limit: int, value: int) -> bool:
    return limit != UNLIMITED and value > limit


def _refused(owner: Owner, message: str) -> QuotaExceeded:
    # Operators asked why a push failed: the client shows the message, the log keeps it.
    logger.info("quota: refused for %s: %s", owner.name, message)
    return QuotaExceeded(message)


def check_blob(owner: Owner, size: int, *, user=None, limits: Limits | None = None) -> None:
    """QuotaExceeded if a blob of `size` bytes (or one that has grown to it) is too big
    for the owner, alone or added to what the owner stores. `limits` are the owner's,
    when the caller has them already.
    """
    if is_site_admin(user):
        return
    limits = limits or limits_for(owner)
    if _exceeded(limits.blob_bytes, size):
        raise _refused(
            owner, f"a blob of {size} bytes is over the limit of {limits.blob_bytes} bytes per blob"
        )
    if limits.bytes != UNLIMITED:
        stored = usage(owner).bytes
        if _exceeded(limits.bytes, stored + size):
            raise _refused(
                owner,
                f"{owner.name} stores {stored} bytes; {size} more would pass the limit "
                f"of {limits.bytes} bytes",
            )


def check_new_version(owner: Owner, *, user=None) -> None:
    """QuotaExceeded if the owner may not have one more published version."""
    if is_site_admin(user):
        return
    limit = limits_for(owner).versions
    if limit == UNLIMITED:
        return
    count = usage(owner).versions
    if count + 1 > limit:
        raise _refused(owner, f"{owner.name} has {count} versions, the limit is {limit}")
