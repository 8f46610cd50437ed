"""The admin for webhooks and their deliveries: last deliveries inline, test and redeliver."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from packages_core.admin.readonly import ReadOnlyAdminMixin
from packages_core.models import Webhook, WebhookDelivery
from packages_core.models.webhooks import EVENTS
from packages_core.services import webhooks as webhook_services

# How many deliveries a webhook's page lists.
LAST_DELIVERIES = 20


class WebhookForm(forms.ModelForm):
    """Events as checkboxes; the secret write-only, as on the owner's pages: it is kept
    sealed and never shown back, and left empty it stays as it was.
    """

    url = forms.URLField(max_length=2000, assume_scheme="https")
    secret = forms.CharField(
        required=False,
        max_length=255,
        # As the pages and the API take it: a secret's spaces sign too.
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Signs every body. Leave empty to keep the current one.",
    )
    remove_secret = forms.BooleanField(required=False, help_text="Sign with an empty key.")
    events = forms.MultipleChoiceField(
        choices=[(e, e) for e in EVENTS], widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Webhook
        fields = ["owner", "url", "events", "name_filter", "format", "is_active"]

    def clean(self):
        data = super().clean()
        if data.get("secret") and data.get("remove_secret"):
            raise ValidationError("Type a new secret or remove it, not both.")
        return data

    def save(self, commit=True):
        if self.cleaned_data.get("remove_secret"):
            self.instance.secret = ""
        elif self.cleaned_data.get("secret"):
            self.instance.secret = self.cleaned_data["secret"]
        return super().save(commit)

    def clean_events(self):
        try:
            return webhook_services.parse_events(self.cleaned_data["events"])
        except webhook_services.WebhookInvalid as error:
            raise ValidationError(str(error)) from error

    def clean_url(self):
        url = self.cleaned_data["url"]
        if not url.lower().startswith(("http://", "https://")):
            raise ValidationError("The URL must be http:// or https://.")
        return url


class DeliveryFields:
    fields = [
        "created",
        "event_type",
        "event_id",
        "status",
        "attempts",
        "last_status_code",
        "last_duration_ms",
        "next_attempt_at",
        "last_error",
    ]


class LastDeliveries(ReadOnlyAdminMixin, DeliveryFields, admin.TabularInline):
    model = WebhookDelivery
    readonly_fields = DeliveryFields.fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = f"last {LAST_DELIVERIES} deliveries"

    def get_queryset(self, request):
        queryset = super().get_queryset(request).order_by("-pk")
        # An inline cannot slice its query set: keep the newest ids instead.
        newest = list(queryset.values_list("pk", flat=True)[:LAST_DELIVERIES])
        return queryset.filter(pk__in=newest)


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    form = WebhookForm
    list_display = ["pk", "url", "owner", "format", "events", "name_filter", "is_active"]
    list_filter = ["is_active", "format"]
    search_fields = ["url", "owner__name"]
    raw_id_fields = ["owner"]
    list_select_related = ["owner"]
    inlines = [LastDeliveries]
    actions = ["send_test_delivery"]

    @admin.action(description="Send a test delivery")
    def send_test_delivery(self, request, queryset):
        for webhook in queryset:
            webhook_services.test_delivery(webhook)
        self.message_user(
            request,
            f"Queued a test delivery for {queryset.count()} webhook(s); deliver_events sends it.",
            messages.SUCCESS,
        )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["pk", "webhook", *DeliveryFields.fields[:-1]]
    list_filter = ["status", "event_type"]
    search_fields = ["event_id", "webhook__url"]
    readonly_fields = [*DeliveryFields.fields, "webhook", "content_type", "body_text"]
    fields = readonly_fields
    list_select_related = ["webhook", "webhook__owner"]
    actions = ["redeliver"]

    @admin.display(description="body")
    def body_text(self, delivery):
        return bytes(delivery.body).decode("utf-8", "replace")

    @admin.action(description="Redeliver (from the first attempt)")
    def redeliver(self, request, queryset):
        count = webhook_services.redeliver(queryset)
        self.message_user(request, f"Queued {count} deliveries again.", messages.SUCCESS)
