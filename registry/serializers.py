"""How the packages API (`packages_core.api`) shows a container image's version.

Named by `registry.package_type.CONTAINER_TYPE` as a dotted path, so only a site that
installs the API imports this module and Django REST framework with it.
"""

from __future__ import annotations

from rest_framework import serializers

from packages_core.api.serializers import VersionSerializer
from registry.models import Manifest


class ContainerVersionSerializer(VersionSerializer):
    """A tag or untagged manifest, with its manifest's digest and media type."""

    manifest_digest = serializers.SerializerMethodField(
        help_text="The digest of the manifest the version names."
    )
    manifest_media_type = serializers.SerializerMethodField(
        help_text="The media type of that manifest."
    )

    def _manifest(self, version) -> dict:
        found = getattr(version, "_manifest_fields", None)
        if found is None:
            found = (
                Manifest.objects.filter(file__version=version, file__is_lead=True)
                .values("digest", "media_type")
                .first()
            ) or {}
            version._manifest_fields = found
        return found

    def get_manifest_digest(self, version) -> str | None:
        return self._manifest(version).get("digest")

    def get_manifest_media_type(self, version) -> str | None:
        return self._manifest(version).get("media_type")
