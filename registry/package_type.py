"""The container image as a package type: what its versions mean to packages_core."""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse

from packages_core.models import PackageVersion
from packages_core.types import PackageType
from registry.cleanup import ContainerCleanupPolicy
from registry.events import ContainerRemovalEvents
from registry.images import CONTAINER, is_tag, latest_candidates
from registry.indexes import ContainerRemovalPolicy


def web_url(version: PackageVersion) -> str | None:
    """The version's page, where the site installs the pages (`registry.web`)."""
    package = version.package
    try:
        return reverse(
            "registry_web:package_version",
            args=[package.owner.name, package.name, version.version],
        )
    except NoReverseMatch:
        return None


CONTAINER_TYPE = PackageType(
    name=CONTAINER,
    label="Container image",
    is_tag=is_tag,
    cleanup_policy=ContainerCleanupPolicy(),
    removal_policy=ContainerRemovalPolicy(),
    removal_events=ContainerRemovalEvents(),
    latest_candidates=latest_candidates,
    web_url=web_url,
    api_serializer="registry.serializers.ContainerVersionSerializer",
)
