"""The Django admin for what the registry keeps beside the package domain."""

from django.contrib import admin

from packages_core.admin.readonly import ReadOnlyAdminMixin
from registry.models import Manifest


@admin.register(Manifest)
class ManifestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: manifests come from pushes and leave with their versions."""

    list_display = ["digest", "package", "media_type", "artifact_type", "subject_digest"]
    list_filter = ["media_type"]
    list_select_related = ["package__owner"]
    search_fields = ["digest", "subject_digest", "package__name", "package__owner__name"]
    raw_id_fields = ["file", "package"]
