"""The Django admin for what the registry keeps beside the package domain."""

from django import forms
from django.contrib import admin

from packages_core.admin.readonly import ReadOnlyAdminMixin
from packages_core.exceptions import PackagesError
from packages_core.models.owners import Visibility
from packages_core.services.owners import check_owner_name, remove_owner
from registry.mirrors import upstream
from registry.mirrors.service import (
    MAX_TTL_SECONDS,
    MirrorInvalid,
    check_upstream_url,
    create_mirror,
    set_password,
)
from registry.models import Manifest, Mirror


@admin.register(Manifest)
class ManifestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: manifests come from pushes and leave with their versions."""

    list_display = ["digest", "package", "media_type", "artifact_type", "subject_digest"]
    list_filter = ["media_type"]
    list_select_related = ["package__owner"]
    search_fields = ["digest", "subject_digest", "package__name", "package__owner__name"]
    raw_id_fields = ["file", "package"]


class MirrorForm(forms.ModelForm):
    """A mirror's fields, its owner made from a name, and a password that is never shown."""

    name = forms.CharField(
        required=False, help_text="The new owner's name; the namespace pulls go through."
    )
    upstream_url = forms.CharField(
        max_length=2000,
        help_text="The upstream registry's root, e.g. https://registry-1.docker.io",
    )
    visibility = forms.ChoiceField(choices=Visibility.choices, initial=Visibility.PUBLIC)
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="The upstream password or token; kept sealed. Empty keeps the current one.",
    )
    clear_password = forms.BooleanField(required=False, help_text="Forget the stored password.")
    ttl_seconds = forms.IntegerField(
        min_value=0,
        max_value=MAX_TTL_SECONDS,
        initial=600,
        help_text="How long a tag is served before it is checked upstream again, in seconds.",
    )

    class Meta:
        model = Mirror
        fields = ["upstream_url", "username", "ttl_seconds"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["visibility"].initial = self.instance.owner.visibility

    def clean_upstream_url(self):
        if self.instance.pk:
            return self.instance.upstream_url
        try:
            return check_upstream_url(self.cleaned_data["upstream_url"])
        except MirrorInvalid as error:
            raise forms.ValidationError(str(error)) from None

    def clean(self):
        data = super().clean()
        if data.get("clear_password") and data.get("password"):
            raise forms.ValidationError("Give a new password or clear it, not both.")
        return data

    def clean_name(self):
        name = self.cleaned_data["name"]
        if self.instance.pk:
            return ""  # a mirror keeps its owner; the field is not shown
        try:
            check_owner_name(name)
        except PackagesError as error:
            raise forms.ValidationError(str(error)) from None
        return name


@admin.register(Mirror)
class MirrorAdmin(admin.ModelAdmin):
    """Mirrors: made here or with `manage.py createmirror`; the owner goes with its mirror."""

    form = MirrorForm
    list_display = ["owner", "upstream_url", "username", "ttl_seconds", "created"]
    list_select_related = ["owner"]
    search_fields = ["owner__name", "upstream_url"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "upstream_url", "username", "password", "visibility", "ttl_seconds"]
        return [
            "upstream_url",
            "username",
            "password",
            "clear_password",
            "visibility",
            "ttl_seconds",
        ]

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            created = create_mirror(
                data["name"],
                obj.upstream_url,
                username=obj.username,
                password=data["password"],
                visibility=data["visibility"],
                ttl_seconds=obj.ttl_seconds,
            )
            obj.pk, obj.owner = created.pk, created.owner
            obj.sealed_password = created.sealed_password
            return
        if data.get("clear_password"):
            set_password(obj, "")
        elif data["password"]:
            set_password(obj, data["password"])
        if obj.owner.visibility != data["visibility"]:
            obj.owner.visibility = data["visibility"]
            obj.owner.save(update_fields=["visibility"])
        obj.save()
        upstream.forget_tokens()

    def delete_model(self, request, obj):
        # The mirror's owner, and with it every image it cached.
        remove_owner(obj.owner)

    def delete_queryset(self, request, queryset):
        for mirror in queryset.select_related("owner"):
            remove_owner(mirror.owner)
