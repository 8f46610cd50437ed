"""The webhook admin: made with a form, last deliveries listed, test delivery and redeliver."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from packages_core.models import Owner, Webhook, WebhookDelivery
from packages_core.services import webhooks

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, site_admin):
    client.force_login(site_admin)
    return client


@pytest.fixture
def webhook(alice):
    return webhooks.create_webhook(Owner.objects.named("alice").get(), "https://ci.example.com/h")


def test_a_webhook_is_made_in_the_admin(admin_client, alice):
    owner = Owner.objects.named("alice").get()
    response = admin_client.post(
        reverse("admin:packages_core_webhook_add"),
        {
            "owner": owner.pk,
            "url": "https://ci.example.com/hook",
            "secret": "s3cret",
            "events": ["delete"],
            "name_filter": "app*",
            "format": "distribution",
            "is_active": "on",
            "deliveries-TOTAL_FORMS": "0",
            "deliveries-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content
    webhook = Webhook.objects.get()
    assert (webhook.owner, webhook.events, webhook.format) == (owner, ["delete"], "distribution")
    assert webhook.secret == "s3cret"


def test_the_admin_refuses_a_url_that_is_not_http(admin_client, alice):
    response = admin_client.post(
        reverse("admin:packages_core_webhook_add"),
        {"url": "ftp://x.example.com/", "events": ["push"], "format": "gitea"},
    )
    assert response.status_code == 200
    assert not Webhook.objects.exists()


def test_the_webhook_page_lists_its_last_deliveries(admin_client, webhook, receiver):
    failed = webhooks.test_delivery(webhook)
    WebhookDelivery.objects.filter(pk=failed.pk).update(
        status="failed", attempts=8, last_status_code=503, last_duration_ms=42
    )
    pending = webhooks.test_delivery(webhook)
    response = admin_client.get(reverse("admin:packages_core_webhook_change", args=[webhook.pk]))
    shown = [form.instance.pk for form in response.context["inline_admin_formsets"][0].formset]
    assert shown == [pending.pk, failed.pk]
    page = response.content.decode()
    assert "503" in page
    assert "failed" in page


def test_send_a_test_delivery_queues_a_ping(admin_client, webhook):
    response = admin_client.post(
        reverse("admin:packages_core_webhook_changelist"),
        {"action": "send_test_delivery", "_selected_action": [webhook.pk]},
    )
    assert response.status_code == 302
    (delivery,) = WebhookDelivery.objects.all()
    assert (delivery.webhook, delivery.event_type, delivery.status) == (webhook, "ping", "pending")


def test_redeliver_queues_a_failed_event_again(admin_client, webhook):
    delivery = webhooks.test_delivery(webhook)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status="failed", attempts=8, next_attempt_at=None
    )
    before = timezone.now()
    admin_client.post(
        reverse("admin:packages_core_webhookdelivery_changelist"),
        {"action": "redeliver", "_selected_action": [delivery.pk]},
    )
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    assert delivery.next_attempt_at >= before
