"""The admin for packages, versions, files and properties."""

from __future__ import annotations

import json

from django.contrib import admin
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.db import transaction
from django.db.models import Count, Q
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from packages_core.admin.display import (
    OwnPackageTypeFilter,
    PackageTypeFilter,
    VersionPackageTypeFilter,
    admin_link,
    per_row_file_aggregate,
    related_changelist_link,
)
from packages_core.admin.readonly import ReadOnlyAdminMixin
from packages_core.models import (
    Package,
    PackageFile,
    PackageProperty,
    PackageVersion,
)
from packages_core.services import versions as version_services
from packages_core.services.webhooks import Origin


@admin.register(Package)
class PackageAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "type", "published_versions", "stored_size", "created"]
    list_filter = [OwnPackageTypeFilter]
    list_select_related = ["owner"]
    search_fields = ["name", "owner__name"]
    autocomplete_fields = ["owner"]
    fields = ["owner", "type", "name", "created", "versions_link", "stored_size"]
    readonly_fields = ["created", "versions_link", "stored_size"]
    date_hierarchy = "created"

    @admin.display(description="versions")
    def versions_link(self, obj):
        return related_changelist_link(obj, "versions", "version")

    @admin.display(description="versions", ordering="version_count")
    def published_versions(self, obj):
        """Published versions (kept on the package): internal (staging) ones do not count."""
        return obj.version_count

    @admin.display(description="size", ordering="size")
    def stored_size(self, obj):
        return filesizeformat(obj.size)

    def delete_model(self, request, obj):
        version_services.remove_package(obj, actor=request.user, origin=Origin.of(request))

    def delete_queryset(self, request, queryset):
        origin = Origin.of(request)
        with transaction.atomic():
            for package in queryset:
                version_services.remove_package(package, actor=request.user, origin=origin)


class PackageFileInline(ReadOnlyAdminMixin, admin.TabularInline):
    """A version's files, to look at: files change only through pushes."""

    model = PackageFile
    fields = ["name", "composite_key", "is_lead", "blob", "blob_size", "created"]
    readonly_fields = ["blob_size", "created"]
    raw_id_fields = ["blob"]
    extra = 0
    can_delete = False
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("blob")

    @admin.display(description="size")
    def blob_size(self, obj):
        return filesizeformat(obj.blob.size)


@admin.register(PackageVersion)
class PackageVersionAdmin(admin.ModelAdmin):
    """Versions come from pushes: their files, properties and metadata are shown, not edited.

    Deleting one, from its page or with the action, goes through the version service
    so its properties and its files' properties go with it.
    """

    list_display = [
        "version",
        "package",
        "owner",
        "is_internal",
        "file_count",
        "total_size",
        "download_count",
        "creator",
        "created",
    ]
    list_filter = ["is_internal", PackageTypeFilter]
    list_select_related = ["package__owner", "creator"]
    search_fields = ["version", "package__name", "package__owner__name"]
    autocomplete_fields = ["package"]
    raw_id_fields = ["creator"]
    fields = [
        "package",
        "version",
        "creator",
        "is_internal",
        "download_count",
        "last_pulled",
        "created",
        "updated",
        "pretty_metadata",
        "property_list",
    ]
    readonly_fields = [
        "download_count",
        "last_pulled",
        "created",
        "updated",
        "pretty_metadata",
        "property_list",
    ]
    date_hierarchy = "created"
    inlines = [PackageFileInline]
    actions = ["delete_selected"]
    show_full_result_count = False

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(file_count=per_row_file_aggregate("version", Count("pk")))
            .with_size()
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        # The registry's manifest rows point at the package: a version does not move.
        return ["package", *self.readonly_fields]

    @admin.display(description="owner", ordering="package__owner__name")
    def owner(self, obj):
        return obj.package.owner

    @admin.display(description="files", ordering="file_count")
    def file_count(self, obj):
        return obj.file_count

    @admin.display(description="size", ordering="total_size")
    def total_size(self, obj):
        return filesizeformat(obj.total_size)

    @admin.display(description="metadata")
    def pretty_metadata(self, obj):
        """The metadata extracted at push time, as indented JSON."""
        text = json.dumps(obj.metadata or {}, indent=2, sort_keys=True, ensure_ascii=False)
        return format_html('<pre class="version-metadata">{}</pre>', text)

    @admin.display(description="properties")
    def property_list(self, obj):
        """The version's properties and its files' properties, in two queries."""
        if obj.pk is None:
            return "-"
        file_names = dict(obj.files.values_list("pk", "name"))
        rows = PackageProperty.objects.filter(
            Q(ref_type=PackageProperty.RefType.VERSION, ref_id=obj.pk)
            | Q(ref_type=PackageProperty.RefType.FILE, ref_id__in=list(file_names))
        ).order_by("ref_type", "ref_id", "name", "id")
        # The version's own first ("file" sorts before "version").
        rows = sorted(rows, key=lambda row: row.ref_type != PackageProperty.RefType.VERSION)
        if not rows:
            return "none"
        cells = (
            (
                "version"
                if row.ref_type == PackageProperty.RefType.VERSION
                else f"file {file_names.get(row.ref_id, row.ref_id)}",
                admin_link(row, row.name),
                row.value,
            )
            for row in rows
        )
        body = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>", cells
        )
        return format_html(
            '<table class="version-properties"><thead><tr><th>on</th><th>name</th>'
            "<th>value</th></tr></thead><tbody>{}</tbody></table>",
            body,
        )

    @admin.action(description="Delete selected versions", permissions=["delete"])
    def delete_selected(self, request, queryset):
        """Django's confirm-then-delete action, under this admin's name for it.

        Django's action deletes through delete_queryset, which removes each version
        with the version service. It keeps the name `delete_selected`: the
        confirmation page posts the action back by that name.
        """
        return django_delete_selected(self, request, queryset)

    def get_deleted_objects(self, objs, request):
        """Django's list of what goes, with what other versions need shown as protected:
        Django then refuses the deletion, as for a protected foreign key. The rule is the
        version service's (its package type's), the same every face asks.
        """
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        selected = list(PackageVersion.objects.filter(pk__in=[obj.pk for obj in objs]))
        by_pk = {version.pk: version for version in selected}
        for pk, needed_by in version_services.removal_blockers(selected).items():
            protected.extend(f"{by_pk[pk]}: needed by {name}" for name in needed_by)
        return deleted, counts, perms_needed, protected

    def delete_model(self, request, obj):
        version_services.remove_versions([obj], actor=request.user, origin=Origin.of(request))

    def delete_queryset(self, request, queryset):
        # Read again without the list's annotations; together, so a selected index and
        # its selected platforms go as one.
        selected = list(queryset.values_list("pk", flat=True))
        with transaction.atomic():
            version_services.remove_versions(
                list(PackageVersion.objects.filter(pk__in=selected)),
                actor=request.user,
                origin=Origin.of(request),
            )


@admin.register(PackageFile)
class PackageFileAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "blob", "blob_size", "is_lead", "created"]
    list_filter = ["is_lead", VersionPackageTypeFilter]
    list_select_related = ["version__package__owner", "blob"]
    search_fields = ["name", "version__version", "version__package__name"]
    raw_id_fields = ["version", "blob"]
    readonly_fields = ["created"]
    show_full_result_count = False

    @admin.display(description="size", ordering="blob__size")
    def blob_size(self, obj):
        return filesizeformat(obj.blob.size)

    def get_deleted_objects(self, objs, request):
        # A version's lead file (a container's manifest) goes only with its version,
        # whose removal the package type checks: taking a platform's manifest alone
        # would break its index. Django refuses a delete that lists protected objects.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        leads = [
            f"{file} (the lead file of {file.version}: delete the version)"
            for file in objs
            if file.is_lead
        ]
        return deleted, counts, perms_needed, [*protected, *leads]

    def delete_model(self, request, obj):
        version_services.remove_files([obj])

    def delete_queryset(self, request, queryset):
        version_services.remove_files(list(queryset))


# Properties point at their object by type and id, not by foreign key.
PROPERTY_TARGETS = {
    PackageProperty.RefType.PACKAGE: Package,
    PackageProperty.RefType.VERSION: PackageVersion,
    PackageProperty.RefType.FILE: PackageFile,
}


@admin.register(PackageProperty)
class PackagePropertyAdmin(admin.ModelAdmin):
    list_display = ["name", "short_value", "ref_type", "target"]
    list_filter = ["ref_type"]
    search_fields = ["name"]
    show_full_result_count = False

    @admin.display(description="value")
    def short_value(self, obj):
        return Truncator(obj.value).chars(80)

    @admin.display(description="attached to", ordering="ref_id")
    def target(self, obj):
        """A link to the object by id; no query per row, so it may point at a deleted one."""
        model = PROPERTY_TARGETS.get(obj.ref_type)
        label = f"{obj.get_ref_type_display()} #{obj.ref_id}"
        if model is None:
            return label
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.ref_id])
        return format_html('<a href="{}">{}</a>', url, label)

    def get_search_results(self, request, queryset, search_term):
        """A number searches the id the properties are attached to."""
        term = search_term.strip()
        if term.isdigit():
            return queryset.filter(ref_id=int(term)), False
        return super().get_search_results(request, queryset, search_term)
