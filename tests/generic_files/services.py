"""Publishing a file as a version of a generic package, through packages_core's services."""

from __future__ import annotations

from typing import BinaryIO

from django.db import transaction

from packages_core.models import Owner, PackageFile
from packages_core.services import quotas, versions
from packages_core.services.blobs import store_blob
from tests.generic_files.package_type import NAME


def publish(
    owner: Owner, user, package: str, version: str, name: str, stream: BinaryIO
) -> PackageFile:
    """Store `stream` and make it the file `name` of a new version, within the owner's
    quotas (QuotaExceeded otherwise).
    """

    def within_quota(digests) -> None:
        quotas.check_blob(owner, digests.size, user=user)

    stored = store_blob(stream, verify=within_quota)
    with transaction.atomic():
        quotas.check_new_version(owner, user=user)
        locked = versions.lock_package(owner, NAME, package)
        row = versions.create_version(locked, version, creator=user)
        return versions.add_file(row, stored.blob, name, is_lead=True)
