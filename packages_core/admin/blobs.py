"""The admin for blobs, the deletions garbage collection owes, and upload sessions.

The registry protocol alone makes them, so the admin mostly looks.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from packages_core.admin.display import (
    admin_link,
    per_row_file_aggregate,
    without_digest_algorithm,
)
from packages_core.admin.readonly import ReadOnlyAdminMixin
from packages_core.models import (
    BlobDeletion,
    BlobUpload,
    PackageBlob,
)
from packages_core.services import uploads as upload_services

# An upload that has received nothing for this long is probably abandoned.
STALE_UPLOAD_AGE = timedelta(hours=24)

# How many files a blob's page lists under "referenced by".
BLOB_REFERENCES_SHOWN = 20


class BlobReferenceFilter(admin.SimpleListFilter):
    """Blobs some file uses, or none (garbage collection's next candidates)."""

    title = "referenced"
    parameter_name = "referenced"

    def lookups(self, request, model_admin):
        return [("yes", "By some file"), ("no", "By no file")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(reference_count__gt=0)
        if self.value() == "no":
            return queryset.filter(reference_count=0)
        return queryset


@admin.register(BlobDeletion)
class BlobDeletionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Objects garbage collection is about to delete; read-only, cleanup_packages owns them."""

    list_display = ["__str__", "created"]
    search_fields = ["^sha256"]
    deletable = False


@admin.register(PackageBlob)
class PackageBlobAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Blobs come only from uploads, which hash the bytes they store; garbage collection
    removes a blob with its stored bytes once nothing uses it.
    """

    list_display = ["__str__", "human_size", "reference_count", "short_sha512", "created"]
    list_filter = [BlobReferenceFilter]
    search_fields = ["^sha256"]
    fields = [
        "sha256",
        "sha512",
        "size",
        "human_size",
        "storage_key",
        "created",
        "reference_count",
        "referenced_by",
    ]
    readonly_fields = fields
    show_full_result_count = False
    deletable = False

    def get_queryset(self, request):
        references = per_row_file_aggregate("blob", Count("pk"))
        return super().get_queryset(request).annotate(reference_count=references)

    @admin.display(description="size", ordering="size")
    def human_size(self, obj):
        return filesizeformat(obj.size)

    @admin.display(description="files using it", ordering="reference_count")
    def reference_count(self, obj):
        """How many package files use the blob (annotated on the list's query)."""
        return obj.reference_count

    @admin.display(description="sha512")
    def short_sha512(self, obj):
        # Recorded only for blobs a client named by their sha512.
        return Truncator(obj.sha512).chars(19) if obj.sha512 else "-"

    @admin.display(description=f"referenced by (first {BLOB_REFERENCES_SHOWN})")
    def referenced_by(self, obj):
        files = obj.files.select_related("version__package__owner")[:BLOB_REFERENCES_SHOWN]
        links = format_html_join(
            "", "<li>{}</li>", ((admin_link(f, f"{f.version} — {f.name}"),) for f in files)
        )
        return format_html("<ul>{}</ul>", links) if links else "nothing (garbage)"

    def get_search_results(self, request, queryset, search_term):
        search_term = without_digest_algorithm(search_term).lower()
        return super().get_search_results(request, queryset, search_term)


class StaleUploadFilter(admin.SimpleListFilter):
    """Uploads that received nothing for a day (likely abandoned) or that are still going."""

    title = "state"
    parameter_name = "stale"

    def lookups(self, request, model_admin):
        hours = int(STALE_UPLOAD_AGE.total_seconds() // 3600)
        return [
            ("yes", f"Stale (no data for over {hours} h)"),
            ("no", f"Active (data within {hours} h)"),
        ]

    def queryset(self, request, queryset):
        cutoff = timezone.now() - STALE_UPLOAD_AGE
        if self.value() == "yes":
            return queryset.filter(updated__lt=cutoff)
        if self.value() == "no":
            return queryset.filter(updated__gte=cutoff)
        return queryset


@admin.register(BlobUpload)
class BlobUploadAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "owner",
        "package_name",
        "received",
        "stale",
        "creator",
        "created",
        "updated",
    ]
    list_filter = [StaleUploadFilter]
    list_select_related = ["owner", "creator"]
    actions = ["cancel_uploads"]
    search_fields = ["owner__name", "package_name"]
    readonly_fields = [
        "id",
        "owner",
        "package_name",
        "creator",
        "bytes_received",
        "storage_key",
        "created",
        "updated",
    ]
    fields = readonly_fields
    date_hierarchy = "created"

    @admin.display(description="received", ordering="bytes_received")
    def received(self, obj):
        return filesizeformat(obj.bytes_received)

    @admin.display(description="stale", boolean=True, ordering="updated")
    def stale(self, obj):
        return obj.updated < timezone.now() - STALE_UPLOAD_AGE

    @admin.action(description="Cancel selected uploads", permissions=["delete"])
    def cancel_uploads(self, request, queryset):
        """End the sessions and drop their staged bytes (once the deletion commits)."""
        uploads = list(queryset)
        delete_uploads(uploads)
        self.message_user(request, f"Cancelled {len(uploads)} upload(s).", messages.SUCCESS)

    def get_search_results(self, request, queryset, search_term):
        """A whole upload id (as in an upload URL) finds that upload."""
        try:
            upload_id = uuid.UUID(search_term.strip())
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(pk=upload_id), False

    def delete_model(self, request, obj):
        delete_uploads([obj])

    def delete_queryset(self, request, queryset):
        delete_uploads(queryset)


def delete_uploads(uploads) -> None:
    with transaction.atomic():
        for upload in uploads:
            upload_services.discard_upload(upload)
