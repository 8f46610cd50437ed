"""/api/v1/owners/<owner>/webhooks: who may manage an owner's webhooks, creating,
reading, changing and deleting them (the secret write-only), their deliveries, a test
delivery and redelivery.
"""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from packages_core.models import Webhook, WebhookDelivery
from packages_core.models.owners import Visibility
from packages_core.services import webhooks
from tests.api_helpers import READ, WRITE, client_with, set_visibility, signed_in, with_token

pytestmark = pytest.mark.django_db

SECRET = "s3cret-write-only"


def webhooks_url(owner: str) -> str:
    return f"/api/v1/owners/{owner}/webhooks"


def webhook_url(webhook: Webhook, tail: str = "") -> str:
    return f"{webhooks_url(webhook.owner.name)}/{webhook.pk}{tail}"


@pytest.fixture
def hook(alice) -> Webhook:
    return webhooks.create_webhook(
        alice.package_owner, "https://ci.example.com/hook", secret=SECRET, events="push"
    )


@pytest.fixture
def org_hook(org) -> Webhook:
    return webhooks.create_webhook(org, "https://chat.example.com/acme")


@pytest.fixture
def alice_api(alice) -> APIClient:
    return with_token(alice, (READ, WRITE))


def failed_delivery(hook: Webhook) -> WebhookDelivery:
    return WebhookDelivery.objects.create(
        webhook=hook,
        event_type="push",
        body=b"{}",
        status=WebhookDelivery.FAILED,
        attempts=5,
        last_status_code=500,
        last_error="HTTP 500",
        last_duration_ms=12,
        claimed_until=timezone.now(),
    )


# Creating, reading, changing, deleting


def test_creating_a_webhook(alice_api, alice):
    response = alice_api.post(
        webhooks_url("alice"),
        {
            "url": "https://ci.example.com/hook",
            "secret": SECRET,
            "events": ["push", "pull"],
            "name_filter": "app/*",
            "format": "distribution",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    webhook = Webhook.objects.get(pk=body["id"])
    assert webhook.owner == alice.package_owner
    assert webhook.secret == SECRET
    assert (webhook.events, webhook.name_filter, webhook.format, webhook.is_active) == (
        ["push", "pull"],
        "app/*",
        "distribution",
        True,
    )
    assert body["has_secret"] is True
    assert "secret" not in body
    assert SECRET not in response.content.decode()


def test_a_new_webhook_gets_the_defaults(alice_api):
    response = alice_api.post(
        webhooks_url("alice"), {"url": "https://ci.example.com/hook"}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["events"], body["format"], body["is_active"]) == (
        ["push", "delete"],
        "gitea",
        True,
    )
    assert body["has_secret"] is False


def test_listing_and_reading_never_return_the_secret(alice_api, hook):
    listing = alice_api.get(webhooks_url("alice"))
    one = alice_api.get(webhook_url(hook))

    assert listing.status_code == 200
    assert [row["id"] for row in listing.json()["results"]] == [hook.pk]
    assert one.status_code == 200
    assert one.json()["url"] == "https://ci.example.com/hook"
    assert one.json()["has_secret"] is True
    for response in (listing, one):
        assert SECRET not in response.content.decode()
        assert "secret" not in response.json().get("results", [response.json()])[0]


def test_patch_changes_only_the_fields_sent(alice_api, hook):
    response = alice_api.patch(
        webhook_url(hook),
        {"url": "https://ci.example.com/other", "is_active": False},
        format="json",
    )

    assert response.status_code == 200, response.content
    hook.refresh_from_db()
    assert (hook.url, hook.is_active, hook.events, hook.secret) == (
        "https://ci.example.com/other",
        False,
        ["push"],
        SECRET,
    )
    assert response.json()["has_secret"] is True


def test_patch_replaces_or_removes_the_secret(alice_api, hook):
    alice_api.patch(webhook_url(hook), {"secret": "another"}, format="json")
    hook.refresh_from_db()
    assert hook.secret == "another"

    response = alice_api.patch(webhook_url(hook), {"secret": ""}, format="json")

    hook.refresh_from_db()
    assert hook.secret == ""
    assert response.json()["has_secret"] is False


def test_put_is_not_offered(alice_api, hook):
    response = alice_api.put(webhook_url(hook), {"url": "https://x.example"}, format="json")

    assert response.status_code == 405


def test_deleting_a_webhook_takes_its_deliveries(alice_api, hook):
    failed_delivery(hook)

    response = alice_api.delete(webhook_url(hook))

    assert response.status_code == 204
    assert not Webhook.objects.exists()
    assert not WebhookDelivery.objects.exists()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "ftp://ci.example.com/hook"}, "the URL must be http:// or https://"),
        ({"url": "https://"}, "url: Enter a valid URL."),
        ({"events": ["push", "explode"]}, "events must be some of push, delete, pull; not explode"),
        ({"events": []}, "events must be some of push, delete, pull; not none"),
        ({"format": "slack"}, "format must be one of gitea, distribution, not 'slack'"),
        ({"url": None}, "url: This field may not be null."),
        ({"events": "push"}, 'events: Expected a list of items but got type "str".'),
    ],
)
def test_a_field_the_service_refuses_is_a_400_with_its_message(alice_api, hook, fields, message):
    created = alice_api.post(
        webhooks_url("alice"), {"url": "https://ci.example.com/new", **fields}, format="json"
    )
    changed = alice_api.patch(webhook_url(hook), fields, format="json")

    for response in (created, changed):
        assert response.status_code == 400
        assert message in response.json()["detail"]
    assert Webhook.objects.count() == 1
    hook.refresh_from_db()
    assert (hook.url, hook.events, hook.format) == (
        "https://ci.example.com/hook",
        ["push"],
        "gitea",
    )


def test_a_missing_url_is_a_400(alice_api):
    response = alice_api.post(webhooks_url("alice"), {"events": ["push"]}, format="json")

    assert response.status_code == 400
    assert response.json() == {"detail": "url: This field is required."}


# Who may


def test_a_read_only_token_may_not_manage_webhooks(alice, hook):
    api = with_token(alice, (READ,))

    refused = [
        api.get(webhooks_url("alice")),
        api.post(webhooks_url("alice"), {"url": "https://x.example"}, format="json"),
        api.patch(webhook_url(hook), {"url": "https://x.example"}, format="json"),
        api.delete(webhook_url(hook)),
        api.post(webhook_url(hook, "/test")),
    ]

    for response in refused:
        assert response.status_code == 403
        assert "needs write:package" in response.json()["detail"]
    assert list(Webhook.objects.values_list("url", flat=True)) == ["https://ci.example.com/hook"]
    assert not hook.deliveries.exists()


def test_organisation_admins_may_manage_its_webhooks(alice, org_hook):
    api = signed_in(alice)

    assert api.get(webhooks_url("acme")).json()["results"][0]["id"] == org_hook.pk
    response = api.patch(webhook_url(org_hook), {"events": ["delete"]}, format="json")
    assert response.status_code == 200
    org_hook.refresh_from_db()
    assert org_hook.events == ["delete"]


@pytest.mark.parametrize("role", ["write", "read"])
def test_organisation_writers_and_readers_get_403(bob, org_hook, reader_of, role):
    reader_of(bob, role)
    api = with_token(bob, (READ, WRITE))

    assert api.get(webhooks_url("acme")).status_code == 403
    assert api.get(webhook_url(org_hook)).status_code == 403
    assert api.post(webhook_url(org_hook, "/test")).status_code == 403
    assert api.delete(webhook_url(org_hook)).status_code == 403
    assert Webhook.objects.filter(pk=org_hook.pk).exists()
    assert not org_hook.deliveries.exists()


def test_other_users_get_403_on_a_public_owner_and_404_on_a_private_one(bob, hook):
    api = with_token(bob, (READ, WRITE))

    assert api.get(webhooks_url("alice")).status_code == 403
    assert (
        api.patch(webhook_url(hook), {"url": "https://x.example"}, format="json").status_code == 403
    )
    set_visibility(hook.owner, Visibility.PRIVATE)
    assert api.get(webhooks_url("alice")).status_code == 404
    assert api.delete(webhook_url(hook)).status_code == 404
    assert api.get(webhooks_url("nobody")).status_code == 404
    hook.refresh_from_db()
    assert hook.url == "https://ci.example.com/hook"


def test_anonymous_callers_are_401(hook):
    api = client_with()

    assert api.get(webhooks_url("alice")).status_code == 401
    assert api.post(webhooks_url("alice"), {"url": "https://x.example"}).status_code == 401
    assert api.get(webhook_url(hook)).status_code == 401


def test_site_admins_may_manage_anyones_webhooks(site_admin, hook, carol):
    api = with_token(site_admin, (READ, WRITE))

    assert api.get(webhook_url(hook)).status_code == 200
    response = api.post(webhooks_url("carol"), {"url": "https://ci.example.com/c"}, format="json")
    assert response.status_code == 201
    assert Webhook.objects.get(pk=response.json()["id"]).owner == carol.package_owner


def test_another_owners_webhook_is_404_under_this_owner(alice_api, org_hook):
    # alice is acme's admin too: only the path is wrong.
    assert alice_api.get(f"{webhooks_url('alice')}/{org_hook.pk}").status_code == 404
    assert alice_api.delete(f"{webhooks_url('alice')}/{org_hook.pk}").status_code == 404
    assert Webhook.objects.filter(pk=org_hook.pk).exists()


def test_session_changes_need_the_csrf_token(alice, hook):
    api = APIClient(enforce_csrf_checks=True)
    api.force_login(alice)

    response = api.delete(webhook_url(hook))

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert Webhook.objects.filter(pk=hook.pk).exists()


# Deliveries, test delivery, redelivery


def test_deliveries_are_listed_newest_first(alice_api, hook):
    failed = failed_delivery(hook)
    newer = WebhookDelivery.objects.create(
        webhook=hook, event_type="delete", body=b"{}", next_attempt_at=timezone.now()
    )

    response = alice_api.get(webhook_url(hook, "/deliveries"))

    assert response.status_code == 200
    rows = response.json()["results"]
    assert [row["id"] for row in rows] == [newer.pk, failed.pk]
    assert (rows[0]["status"], rows[0]["attempts"], rows[0]["last_status_code"]) == (
        "pending",
        0,
        None,
    )
    assert rows[0]["next_attempt_at"] is not None
    assert (rows[1]["status"], rows[1]["last_status_code"], rows[1]["last_error"]) == (
        "failed",
        500,
        "HTTP 500",
    )
    assert rows[1]["last_duration_ms"] == 12
    assert rows[1]["event_id"] == str(failed.event_id)


def test_a_test_delivery_queues_a_ping(alice_api, hook):
    response = alice_api.post(webhook_url(hook, "/test"))

    assert response.status_code == 202
    delivery = hook.deliveries.get()
    assert response.json()["id"] == delivery.pk
    assert (delivery.event_type, delivery.status) == ("ping", WebhookDelivery.PENDING)
    assert response.json()["event_type"] == "ping"


def test_redeliver_queues_a_failed_delivery_again(alice_api, hook):
    failed = failed_delivery(hook)

    response = alice_api.post(webhook_url(hook, f"/deliveries/{failed.pk}/redeliver"))

    assert response.status_code == 202
    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.claimed_until) == ("pending", 0, None)
    assert response.json()["status"] == "pending"
    assert response.json()["attempts"] == 0


def test_redeliver_refuses_another_webhooks_delivery(alice_api, hook, org_hook):
    other = failed_delivery(org_hook)

    response = alice_api.post(webhook_url(hook, f"/deliveries/{other.pk}/redeliver"))

    assert response.status_code == 404
    other.refresh_from_db()
    assert other.status == WebhookDelivery.FAILED
