"""The admin for access tokens: created through the token service, revoked by an action."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from packages_core.admin.display import (
    USER_SEARCH_FIELD,
)
from packages_core.exceptions import PackagesError
from packages_core.models import (
    AccessToken,
)
from packages_core.models.tokens import Scope
from packages_core.services import tokens as token_services


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
