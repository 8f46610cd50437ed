"""Generic files as a package type: any version name is a tag, the newest version stays."""

from __future__ import annotations

from packages_core.models import Package
from packages_core.types import CleanupPolicy, PackageType

NAME = "generic"


class KeepNewest(CleanupPolicy):
    """A package's newest version is never cleaned up, whatever a rule says."""

    def protected_versions(self, package: Package) -> set[str]:
        newest = package.versions.filter(is_internal=False).order_by("-created", "-pk").first()
        return {newest.version.lower()} if newest is not None else set()


GENERIC = PackageType(
    name=NAME,
    label="Generic files",
    cleanup_policy=KeepNewest(),
    api_serializer="tests.generic_files.serializers.GenericVersionSerializer",
)
