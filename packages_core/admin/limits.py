"""The admin for owners' quota overrides and cleanup rules."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join

from packages_core import types
from packages_core.admin.display import (
    admin_link,
    describe_limit,
)
from packages_core.models import (
    CleanupRule,
    OwnerQuota,
)
from packages_core.models.limits import CLEANUP_RULE_FIELDS
from packages_core.services import cleanup as cleanup_services

# How many versions a cleanup rule's page lists under "would remove now".
CLEANUP_PREVIEW_SHOWN = 50


class OwnerQuotaInline(admin.StackedInline):
    model = OwnerQuota
    extra = 0


@admin.register(OwnerQuota)
class OwnerQuotaAdmin(admin.ModelAdmin):
    list_display = ["owner", "versions_limit", "bytes_limit", "blob_bytes_limit"]
    list_select_related = ["owner"]
    search_fields = ["owner__name"]
    autocomplete_fields = ["owner"]

    @admin.display(description="max versions", ordering="max_versions")
    def versions_limit(self, obj):
        return describe_limit(obj.max_versions)

    @admin.display(description="max total size", ordering="max_bytes")
    def bytes_limit(self, obj):
        return describe_limit(obj.max_bytes, as_size=True)

    @admin.display(description="max blob size", ordering="max_blob_bytes")
    def blob_bytes_limit(self, obj):
        return describe_limit(obj.max_blob_bytes, as_size=True)


class CleanupRuleForm(forms.ModelForm):
    """The type as a choice of the package types apps registered; a saved rule's type
    that none registers (its app since removed) stays a choice, so the rule still saves.
    """

    type = forms.ChoiceField()

    class Meta:
        model = CleanupRule
        fields = ["owner", *CLEANUP_RULE_FIELDS]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = types.choices(self.instance.type)


@admin.register(CleanupRule)
class CleanupRuleAdmin(admin.ModelAdmin):
    form = CleanupRuleForm
    list_display = [
        "owner",
        "type",
        "enabled",
        "keep_count",
        "keep_pattern",
        "remove_days",
        "remove_unpulled_days",
        "remove_pattern",
        "updated",
    ]
    list_filter = ["enabled", "type"]
    list_select_related = ["owner"]
    search_fields = ["owner__name", "type"]
    autocomplete_fields = ["owner"]
    readonly_fields = ["created", "updated", "would_remove"]

    @admin.display(description="would remove now")
    def would_remove(self, obj):
        """What the saved rule would remove if cleanup ran now (computed for this page only)."""
        if obj.pk is None:
            return "-"
        doomed = cleanup_services.preview_rule(obj)
        if not doomed:
            return "nothing"
        rows = (
            (
                admin_link(version, f"{version.package.name} {version.version}"),
                date_format(timezone.localtime(version.created), "Y-m-d H:i"),
            )
            for version in doomed[:CLEANUP_PREVIEW_SHOWN]
        )
        more = len(doomed) - CLEANUP_PREVIEW_SHOWN
        return format_html(
            '<p>{} version(s){}:</p><ul class="cleanup-preview">{}</ul>{}',
            len(doomed),
            "" if obj.enabled else " (the rule is disabled: cleanup does not apply it)",
            format_html_join("", "<li>{} <small>created {}</small></li>", rows),
            format_html("<p>and {} more</p>", more) if more > 0 else "",
        )
