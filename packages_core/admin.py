"""The Django admin for the package domain: owners, tokens, packages, blobs, uploads, limits."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import BigIntegerField, Count, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from packages_core import types
from packages_core.exceptions import PackagesError
from packages_core.models import (
    AccessToken,
    BlobDeletion,
    BlobUpload,
    CleanupRule,
    Membership,
    Owner,
    OwnerQuota,
    Package,
    PackageBlob,
    PackageFile,
    PackageProperty,
    PackageVersion,
)
from packages_core.models.limits import UNLIMITED
from packages_core.models.tokens import Scope
from packages_core.services import cleanup as cleanup_services
from packages_core.services import owners as owner_services
from packages_core.services import quotas as quota_services
from packages_core.services import tokens as token_services
from packages_core.services import uploads as upload_services
from packages_core.services import versions as version_services

# Foreign keys to the host's user model use raw ids, not autocomplete: autocomplete
# needs the user model registered in this admin site with search_fields, and a host's
# custom user model may not be.
USER_SEARCH_FIELD = f"user__{get_user_model().USERNAME_FIELD}"

# How many files a blob's page lists under "referenced by".
BLOB_REFERENCES_SHOWN = 20

# An upload that has received nothing for this long is probably abandoned.
STALE_UPLOAD_AGE = timedelta(hours=24)

# How many versions a cleanup rule's page lists under "would remove now".
CLEANUP_PREVIEW_SHOWN = 50

# Filters and display helpers shared by several admins.


class PackageTypeFilter(admin.SimpleListFilter):
    """Filter by package type, offering the types that packages actually have.

    The choices come from the (small) package table, not from a DISTINCT over the
    (possibly huge) table being listed.
    """

    title = "package type"
    parameter_name = "package_type"
    lookup = "package__type"

    def lookups(self, request, model_admin):
        found = Package.objects.order_by("type").values_list("type", flat=True).distinct()
        return [(type_, type_) for type_ in found]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.lookup: self.value()})
        return queryset


class OwnPackageTypeFilter(PackageTypeFilter):
    lookup = "type"


class VersionPackageTypeFilter(PackageTypeFilter):
    lookup = "version__package__type"


def describe_limit(value: int | None, *, as_size: bool = False) -> str:
    """A quota value as people read it: site default, unlimited, or the amount."""
    if value is None:
        return "site default"
    if value == UNLIMITED:
        return "unlimited"
    return filesizeformat(value) if as_size else str(value)


def admin_link(obj, label=None) -> str:
    """A link to the object's change page in the default admin site."""
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, label if label is not None else obj)


def changelist_link(model, label: str, **filters) -> str:
    """A link to the model's changelist in the default admin site, filtered by `filters`."""
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return format_html('<a href="{}?{}">{}</a>', url, urlencode(filters), label)


def per_row_file_aggregate(link: str, aggregate):
    """`aggregate` over the package files whose `link` is the listed row, 0 for none.

    A correlated subquery rather than a join with GROUP BY: a page of the list costs
    one query, and the database evaluates it only for the rows on that page.
    """
    files = PackageFile.objects.filter(**{link: OuterRef("pk")}).order_by().values(link)
    subquery = Subquery(files.annotate(value=aggregate).values("value"))
    return Coalesce(subquery, 0, output_field=BigIntegerField())


def without_digest_algorithm(search_term: str) -> str:
    """Let people paste `sha256:<hex>` where the column holds only the hex."""
    return search_term.replace("sha256:", "").strip()


# Owners, memberships, quotas and cleanup rules.


class OwnerForm(forms.ModelForm):
    """Checks the owner's name by the service rules and that only user owners have a user."""

    class Meta:
        model = Owner
        fields = ["name", "kind", "user", "visibility", "description"]

    def clean_name(self):
        name = self.cleaned_data["name"]
        if name.lower() != (self.instance.name or "").lower():
            try:
                owner_services.check_owner_name(name)
            except PackagesError as exc:
                raise ValidationError(str(exc)) from exc
        return name

    def clean(self):
        cleaned_data = super().clean()
        # On the change page kind is read-only, so it is not in the form's data.
        kind = cleaned_data.get("kind", self.instance.kind)
        user = cleaned_data.get("user")
        if kind == Owner.Kind.USER and user is None and "user" not in self.errors:
            self.add_error("user", "An owner of kind 'user' needs its user.")
        elif kind == Owner.Kind.ORG and user is not None:
            self.add_error("user", "An organisation has no user; leave this empty.")
        return cleaned_data


class MembershipInlineFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        if self.instance.kind == Owner.Kind.ORG:
            return
        for form in self.forms:
            if form.cleaned_data and not form.cleaned_data.get("DELETE"):
                raise ValidationError("Only organisations have members.")


class MembershipInline(admin.TabularInline):
    model = Membership
    formset = MembershipInlineFormSet
    fields = ["user", "role", "created"]
    readonly_fields = ["created"]
    raw_id_fields = ["user"]
    extra = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")


class OwnerQuotaInline(admin.StackedInline):
    model = OwnerQuota
    extra = 0


@admin.register(Owner)
class OwnerAdmin(admin.ModelAdmin):
    form = OwnerForm
    list_display = ["name", "kind", "visibility", "user", "package_count", "created"]
    list_filter = ["kind", "visibility"]
    list_select_related = ["user"]
    search_fields = ["name", USER_SEARCH_FIELD]
    raw_id_fields = ["user"]
    date_hierarchy = "created"
    fields = [
        "name",
        "kind",
        "user",
        "visibility",
        "description",
        "created",
        "packages_link",
        "quota_usage",
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(package_count=Count("packages"))

    @admin.display(description="usage")
    def quota_usage(self, obj):
        """What the owner stores against its limits (computed for this page only)."""
        if obj.pk is None:
            return "-"
        used, limits = quota_services.usage(obj), quota_services.limits_for(obj)

        def limit(value, size=False):
            if value == UNLIMITED:
                return "unlimited"
            return filesizeformat(value) if size else str(value)

        return (
            f"{used.versions} version(s) of {limit(limits.versions)}; "
            f"{filesizeformat(used.bytes)} of {limit(limits.bytes, size=True)}; "
            f"largest blob allowed: {limit(limits.blob_bytes, size=True)}"
        )

    @admin.display(description="packages")
    def packages_link(self, obj):
        if obj.pk is None:
            return "-"
        count = obj.packages.count()
        return changelist_link(Package, f"{count} package(s)", owner__id__exact=obj.pk)

    @admin.display(description="packages", ordering="package_count")
    def package_count(self, obj):
        return obj.package_count

    def get_readonly_fields(self, request, obj=None):
        # A user owner cannot become an organisation or the other way round: the
        # memberships, tokens and access rules of the one make no sense for the other.
        shown = ["created", "packages_link", "quota_usage"]
        return shown if obj is None else ["kind", *shown]

    def get_inlines(self, request, obj):
        # On the add page the kind is not chosen yet; the formset refuses members
        # for a user owner.
        if obj is None or obj.is_org:
            return [MembershipInline, OwnerQuotaInline]
        return [OwnerQuotaInline]

    def delete_model(self, request, obj):
        delete_owners([obj])

    def delete_queryset(self, request, queryset):
        delete_owners(queryset)


def delete_owners(owners) -> None:
    with transaction.atomic():
        for owner in owners:
            owner_services.remove_owner(owner)


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["owner", "user", "role"]

    def clean_owner(self):
        owner = self.cleaned_data["owner"]
        if not owner.is_org:
            raise ValidationError(f"{owner.name} is a user, not an organisation.")
        return owner


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    form = MembershipForm
    list_display = ["owner", "user", "role", "created"]
    list_filter = ["role"]
    list_select_related = ["owner", "user"]
    search_fields = ["owner__name", USER_SEARCH_FIELD]
    autocomplete_fields = ["owner"]
    raw_id_fields = ["user"]


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
        fields = [
            "owner",
            "type",
            "enabled",
            "keep_count",
            "keep_pattern",
            "remove_days",
            "remove_pattern",
            "match_full_name",
        ]

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


# Access tokens.


class TokenStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("expired", "Expired"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        now = timezone.now()
        not_expired = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        if self.value() == "active":
            return queryset.filter(not_expired, revoked_at__isnull=True)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


def clean_scopes(scopes: list[str]) -> list[str]:
    try:
        return token_services.parse_scopes(scopes)
    except PackagesError as exc:
        raise ValidationError(str(exc)) from exc


class AccessTokenForm(forms.ModelForm):
    """The change form: scopes as checkboxes instead of raw JSON."""

    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = AccessToken
        fields = ["user", "name", "scopes", "expires_at"]

    def clean_scopes(self):
        return clean_scopes(self.cleaned_data["scopes"])


class AccessTokenCreationForm(forms.ModelForm):
    """The add form; the admin hands its data to the token service, which makes the secret."""

    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[Scope.READ_PACKAGE],
    )
    expires_in_days = forms.IntegerField(
        min_value=1, required=False, help_text="Leave empty for a token that does not expire."
    )

    class Meta:
        model = AccessToken
        fields = ["user", "name", "scopes"]

    def clean_scopes(self):
        return clean_scopes(self.cleaned_data["scopes"])


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    form = AccessTokenForm
    add_form = AccessTokenCreationForm
    list_display = [
        "name",
        "user",
        "token_prefix",
        "scope_list",
        "active",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "created",
    ]
    list_filter = [TokenStatusFilter]
    list_select_related = ["user"]
    search_fields = ["name", USER_SEARCH_FIELD, "^token_prefix"]
    raw_id_fields = ["user"]
    date_hierarchy = "created"
    actions = ["revoke_tokens"]
    fields = [
        "user",
        "name",
        "scopes",
        "expires_at",
        "token_prefix",
        "token_hash",
        "last_used_at",
        "revoked_at",
        "created",
    ]
    add_fields = ["user", "name", "scopes", "expires_in_days"]

    @admin.display(description="scopes")
    def scope_list(self, obj):
        return ", ".join(obj.scopes)

    @admin.display(description="active", boolean=True)
    def active(self, obj):
        return obj.is_active()

    def get_fields(self, request, obj=None):
        return self.add_fields if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        # Revocation goes through the "Revoke selected tokens" action (the service).
        return ["user", "token_prefix", "token_hash", "last_used_at", "revoked_at", "created"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, **kwargs)

    def get_search_results(self, request, queryset, search_term):
        """Searching for a whole secret finds its token (by hash), e.g. for a leaked token."""
        term = search_term.strip()
        if token_services.looks_like_token(term) and " " not in term:
            return queryset.filter(token_hash=token_services.hash_token(term)), False
        return super().get_search_results(request, queryset, search_term)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        token, secret = token_services.create_access_token(
            form.cleaned_data["user"],
            form.cleaned_data["name"],
            form.cleaned_data["scopes"],
            expires_in_days=form.cleaned_data["expires_in_days"],
        )
        # The admin goes on with `obj` (log entry, redirect): make it the stored token.
        obj.pk = token.pk
        obj.refresh_from_db()
        obj._state.adding = False
        messages.success(
            request,
            f"The secret of token “{token.name}” is {secret} — copy it now: "
            "it is not stored and will not be shown again.",
        )

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke_tokens(self, request, queryset):
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            token_services.revoke_token(token)
            revoked += 1
        self.message_user(request, f"Revoked {revoked} token(s).", messages.SUCCESS)


# Packages, versions, files and properties.


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
        if obj.pk is None:
            return "-"
        count = obj.versions.count()
        return changelist_link(PackageVersion, f"{count} version(s)", package__id__exact=obj.pk)

    @admin.display(description="versions", ordering="version_count")
    def published_versions(self, obj):
        """Published versions (kept on the package): internal (staging) ones do not count."""
        return obj.version_count

    @admin.display(description="size", ordering="size")
    def stored_size(self, obj):
        return filesizeformat(obj.size)

    def delete_model(self, request, obj):
        version_services.remove_package(obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for package in queryset:
                version_services.remove_package(package)


class PackageFileInline(admin.TabularInline):
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

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

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
        "created",
        "updated",
        "pretty_metadata",
        "property_list",
    ]
    readonly_fields = ["download_count", "created", "updated", "pretty_metadata", "property_list"]
    date_hierarchy = "created"
    inlines = [PackageFileInline]
    actions = ["delete_selected"]
    show_full_result_count = False

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                file_count=per_row_file_aggregate("version", Count("pk")),
                total_size=per_row_file_aggregate("version", Sum("blob__size")),
            )
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

    def delete_model(self, request, obj):
        version_services.remove_version(obj)

    def delete_queryset(self, request, queryset):
        delete_versions(queryset)


def delete_versions(queryset) -> None:
    # Read again without the list's annotations.
    selected = list(queryset.values_list("pk", flat=True))
    with transaction.atomic():
        for version in PackageVersion.objects.filter(pk__in=selected):
            version_services.remove_version(version)


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


# Blobs and uploads: made only by the registry protocol, so the admin only looks.


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
class BlobDeletionAdmin(admin.ModelAdmin):
    """Objects garbage collection is about to delete; read-only, cleanup_packages owns them."""

    list_display = ["__str__", "created"]
    search_fields = ["^sha256"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PackageBlob)
class PackageBlobAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request):
        # Blobs come only from uploads, which hash the bytes they store.
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Garbage collection removes a blob with its stored bytes once nothing uses it.
        return False


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
class BlobUploadAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "image", "received", "stale", "creator", "created", "updated"]
    list_filter = [StaleUploadFilter]
    list_select_related = ["owner", "creator"]
    actions = ["cancel_uploads"]
    search_fields = ["owner__name", "image"]
    readonly_fields = [
        "id",
        "owner",
        "image",
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

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        delete_uploads([obj])

    def delete_queryset(self, request, queryset):
        delete_uploads(queryset)


def delete_uploads(uploads) -> None:
    with transaction.atomic():
        for upload in uploads:
            upload_services.discard_upload(upload)
