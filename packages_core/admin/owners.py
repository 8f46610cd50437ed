"""The admin for owners and organisations' memberships."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count
from django.template.defaultfilters import filesizeformat

from packages_core.admin.display import (
    USER_SEARCH_FIELD,
    describe_limit,
    related_changelist_link,
)
from packages_core.admin.limits import OwnerQuotaInline
from packages_core.exceptions import LastAdmin, PackagesError
from packages_core.models import (
    Membership,
    Owner,
)
from packages_core.services import owners as owner_services
from packages_core.services import quotas as quota_services


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
        kept = [
            form.cleaned_data
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        if self.instance.kind != Owner.Kind.ORG:
            if kept:
                raise ValidationError("Only organisations have members.")
            return
        # The rule of the owners service (LastAdmin), for the rows this form saves.
        had_admin = (
            self.instance.pk is not None
            and Membership.objects.filter(owner=self.instance, role=Membership.Role.ADMIN).exists()
        )
        if had_admin and not any(row.get("role") == Membership.Role.ADMIN for row in kept):
            raise ValidationError(
                f"{self.instance.name} would have no admin left; make another member an "
                "admin first."
            )


class MembershipInline(admin.TabularInline):
    model = Membership
    formset = MembershipInlineFormSet
    fields = ["user", "role", "created"]
    readonly_fields = ["created"]
    raw_id_fields = ["user"]
    extra = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")


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
        return (
            f"{used.versions} version(s) of {describe_limit(limits.versions)}; "
            f"{filesizeformat(used.bytes)} of {describe_limit(limits.bytes, as_size=True)}; "
            f"largest blob allowed: {describe_limit(limits.blob_bytes, as_size=True)}"
        )

    @admin.display(description="packages")
    def packages_link(self, obj):
        return related_changelist_link(obj, "packages", "package")

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

    def clean_role(self):
        role = self.cleaned_data["role"]
        saved = self.instance
        if saved.pk and role != Membership.Role.ADMIN and is_last_admin(saved):
            raise ValidationError(
                f"{saved.user} is the last admin of {saved.owner.name}; make another member "
                "an admin first."
            )
        return role


def is_last_admin(membership: Membership) -> bool:
    """Whether this membership is its organisation's only admin one."""
    admins = Membership.objects.filter(owner_id=membership.owner_id, role=Membership.Role.ADMIN)
    return (
        membership.role == Membership.Role.ADMIN and not admins.exclude(pk=membership.pk).exists()
    )


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    form = MembershipForm
    list_display = ["owner", "user", "role", "created"]
    list_filter = ["role"]
    list_select_related = ["owner", "user"]
    search_fields = ["owner__name", USER_SEARCH_FIELD]
    autocomplete_fields = ["owner"]
    raw_id_fields = ["user"]

    def has_delete_permission(self, request, obj=None):
        # An organisation's last admin stays (the owners service's rule): Django then
        # lists the membership as one that cannot be deleted.
        if obj is not None and is_last_admin(obj):
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request, queryset):
        for membership in queryset.select_related("owner", "user"):
            try:
                owner_services.remove_membership(membership.owner, membership.user)
            except LastAdmin as exc:
                self.message_user(request, str(exc), messages.ERROR)
