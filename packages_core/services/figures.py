"""A package's kept figures: how many published versions it has, and the bytes of the
distinct blobs they use.

Listings show both for every package on a page. Worked out there, they cost as much as
the package is big (an image of 10,000 tags has 30,000 files: 50-100 ms a page), so
the version services keep them on the package row as versions and files come and go.
Internal versions (an image's upload staging) count for neither.

A blob counts once however many files of the package use it: a file's blob is added
when no other published file of the package uses it, and taken off when the last one
goes. Those questions are asked with the package's row locked (as every writer of its
versions does), after the writer's own change, so two writers never both count, or
both forget, the same blob.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Exists, F, OuterRef, Sum

from packages_core import changes
from packages_core.models import Package, PackageBlob, PackageFile, PackageVersion


def version_added(package_id: int) -> None:
    Package.objects.filter(pk=package_id).update(version_count=F("version_count") + 1)


def version_removed(package_id: int) -> None:
    Package.objects.filter(pk=package_id, version_count__gt=0).update(
        version_count=F("version_count") - 1
    )


def lock(package_ids: Iterable[int]) -> None:
    """Lock the packages' rows until the transaction ends, in key order.

    FOR NO KEY UPDATE, as `versions.lock_package`: rows referring to a package (new
    files) are not held up. Whoever removes versions or files takes it before deleting:
    a push of the same tag holds it and may wait for the rows being deleted, so taking
    it after them would deadlock. Taking it announces a change (packages_core/changes.py).
    """
    ids = sorted(set(package_ids))
    if ids:
        list(
            Package.objects.select_for_update(no_key=True)
            .filter(pk__in=ids)
            .order_by("pk")
            .values("pk")
        )
        changes.changed()


def _published_uses(package_id: int, *, besides: Iterable[int] = ()):
    uses = PackageFile.objects.filter(
        package_id=package_id, blob_id=OuterRef("pk"), version__is_internal=False
    )
    besides = list(besides)
    return uses.exclude(pk__in=besides) if besides else uses


def files_added(package_id: int, files: Iterable[PackageFile]) -> None:
    """After published files were added to the package: count the blobs new to it."""
    files = list(files)
    if not files:
        return
    lock([package_id])
    new_bytes = (
        PackageBlob.objects.filter(pk__in={f.blob_id for f in files})
        .exclude(Exists(_published_uses(package_id, besides=[f.pk for f in files])))
        .aggregate(total=Sum("size"))["total"]
    )
    if new_bytes:
        Package.objects.filter(pk=package_id).update(size=F("size") + new_bytes)


def files_removed(package_id: int, blob_ids: Iterable[int]) -> None:
    """After published files using these blobs were deleted: take off the blobs the
    package no longer uses.
    """
    blob_ids = set(blob_ids)
    if not blob_ids:
        return
    lock([package_id])
    gone_bytes = (
        PackageBlob.objects.filter(pk__in=blob_ids)
        .exclude(Exists(_published_uses(package_id)))
        .aggregate(total=Sum("size"))["total"]
    )
    if gone_bytes:
        Package.objects.filter(pk=package_id).update(size=F("size") - gone_bytes)


def counted(package_id: int) -> tuple[int, int]:
    """(published versions, bytes of their distinct blobs) worked out from the rows:
    what the kept figures must equal (tests, `recount`).
    """
    versions = PackageVersion.objects.filter(package_id=package_id).published().count()
    size = (
        PackageBlob.objects.filter(Exists(_published_uses(package_id))).aggregate(
            total=Sum("size")
        )["total"]
        or 0
    )
    return versions, size


def recount(packages=None) -> int:
    """Work the figures out again from the rows (all packages, or these); how many
    were wrong. For data written before the figures were kept, or by hand.
    """
    queryset = Package.objects.all() if packages is None else packages
    wrong = 0
    for package in queryset.only("pk", "version_count", "size").iterator():
        versions, size = counted(package.pk)
        if (versions, size) != (package.version_count, package.size):
            Package.objects.filter(pk=package.pk).update(version_count=versions, size=size)
            wrong += 1
    return wrong
