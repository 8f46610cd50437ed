"""An owner's webhook settings pages: who may use them, adding, changing and deleting a
webhook (its secret never shown back), its last deliveries, test deliveries and redelivery.
"""

import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from packages_core.models import Webhook, WebhookDelivery
from packages_core.models.owners import Visibility
from packages_core.services import webhooks
from tests.web_helpers import page, set_visibility

pytestmark = pytest.mark.django_db

SECRET = "s3cret-never-shown"


def url(name: str, *args) -> str:
    return reverse(f"registry_web:{name}", args=args)


def form_data(**fields) -> dict:
    """The form as a browser posts it: a push-and-delete webhook, active, no secret."""
    data = {
        "url": "https://ci.example.com/hook",
        "secret": "",
        "events": ["push", "delete"],
        "name_filter": "",
        "format": "gitea",
        "is_active": "on",
    }
    data.update(fields)
    return {name: value for name, value in data.items() if value is not None}


@pytest.fixture
def alice_signed_in(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def hook(alice) -> Webhook:
    return webhooks.create_webhook(
        alice.package_owner, "https://ci.example.com/hook", secret=SECRET, name_filter="app/*"
    )


@pytest.fixture
def org_hook(org) -> Webhook:
    return webhooks.create_webhook(org, "https://chat.example.com/acme")


def failed_delivery(hook: Webhook, **fields) -> WebhookDelivery:
    values = {
        "event_type": "push",
        "body": b"{}",
        "status": WebhookDelivery.FAILED,
        "attempts": 5,
        "last_status_code": 503,
        "last_error": "HTTP 503",
        "last_duration_ms": 42,
        "claimed_until": timezone.now(),
    }
    values.update(fields)
    return WebhookDelivery.objects.create(webhook=hook, **values)


# Who may


def test_the_user_sees_their_webhooks_and_the_settings_nav_leads_there(alice_signed_in, hook):
    response = page(alice_signed_in, "owner_webhooks", "alice")

    assert response.status_code == 200
    assert list(response.context["webhooks"]) == [hook]
    assert url("owner_webhook", "alice", hook.pk) in response.text
    cleanup = page(alice_signed_in, "owner_cleanup", "alice").text
    assert url("owner_webhooks", "alice") in cleanup


def test_organisation_admins_and_site_admins_may_manage_webhooks(
    client, org_hook, site_admin, alice
):
    client.force_login(alice)
    assert page(client, "owner_webhooks", "acme").status_code == 200
    assert url("owner_webhooks", "acme") in page(client, "org_settings", "acme").text
    client.force_login(site_admin)
    assert page(client, "owner_webhooks", "acme").status_code == 200
    assert page(client, "owner_webhook", "acme", org_hook.pk).status_code == 200


@pytest.mark.parametrize("role", ["write", "read"])
def test_organisation_writers_and_readers_get_403(client, org_hook, bob, reader_of, role):
    reader_of(bob, role)
    client.force_login(bob)

    assert page(client, "owner_webhooks", "acme").status_code == 403
    assert page(client, "owner_webhook", "acme", org_hook.pk).status_code == 403
    assert client.post(url("owner_webhook_delete", "acme", org_hook.pk)).status_code == 403
    assert Webhook.objects.filter(pk=org_hook.pk).exists()


def test_other_users_may_change_nothing(client, hook, bob):
    client.force_login(bob)

    assert page(client, "owner_webhooks", "alice").status_code == 403
    assert page(client, "owner_webhook_new", "alice").status_code == 403
    edit = client.post(
        url("owner_webhook", "alice", hook.pk), form_data(url="https://evil.example")
    )
    assert edit.status_code == 403
    assert client.post(url("owner_webhook_test", "alice", hook.pk)).status_code == 403
    assert client.post(url("owner_webhook_delete", "alice", hook.pk)).status_code == 403
    hook.refresh_from_db()
    assert hook.url == "https://ci.example.com/hook"
    assert not hook.deliveries.exists()


def test_private_owners_are_404_and_anonymous_visitors_sign_in(client, carol, bob, hook):
    client.force_login(bob)
    assert page(client, "owner_webhooks", "carol").status_code == 404
    set_visibility(hook.owner, Visibility.PRIVATE)
    assert page(client, "owner_webhook", "alice", hook.pk).status_code == 404
    client.logout()

    response = page(client, "owner_webhooks", "alice")

    assert response.status_code == 404  # private: not even a sign-in prompt
    set_visibility(hook.owner, Visibility.PUBLIC)
    response = page(client, "owner_webhooks", "alice")
    assert response.status_code == 302
    assert response.url.startswith(reverse("registry_web:login"))


def test_another_owners_webhook_is_404_under_this_owner(client, org_hook, alice, hook):
    client.force_login(alice)  # admin of acme and alice herself

    assert page(client, "owner_webhook", "alice", org_hook.pk).status_code == 404
    assert client.post(url("owner_webhook_delete", "alice", org_hook.pk)).status_code == 404
    assert Webhook.objects.filter(pk=org_hook.pk).exists()


# Adding, changing, deleting


def test_adding_a_webhook_saves_it_and_opens_its_page(alice_signed_in, alice):
    response = alice_signed_in.post(
        url("owner_webhook_new", "alice"),
        form_data(
            secret=SECRET,
            events=["push", "pull"],
            name_filter="app/*",
            format="distribution",
        ),
    )

    hook = Webhook.objects.get(owner=alice.package_owner)
    assert response.status_code == 302
    assert response.url == url("owner_webhook", "alice", hook.pk)
    assert (hook.url, hook.secret, hook.events) == (
        "https://ci.example.com/hook",
        SECRET,
        ["push", "pull"],
    )
    assert (hook.name_filter, hook.format, hook.is_active) == ("app/*", "distribution", True)


def test_an_organisation_admin_adds_a_webhook_to_the_organisation(alice_signed_in, org):
    response = alice_signed_in.post(url("owner_webhook_new", "acme"), form_data())

    assert response.status_code == 302
    assert Webhook.objects.get().owner == org


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"url": "ftp://ci.example.com/hook"}, "url", "http:// or https://"),
        ({"url": "https://"}, "url", "Enter a valid URL"),
        ({"events": ["push", "explode"]}, "events", "explode"),
        ({"events": []}, "events", "required"),
        ({"format": "slack"}, "format", "slack"),
    ],
)
def test_a_refused_webhook_goes_back_to_the_form(alice_signed_in, fields, field, message):
    response = alice_signed_in.post(url("owner_webhook_new", "alice"), form_data(**fields))

    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert not Webhook.objects.exists()


def test_the_secret_is_never_rendered(alice_signed_in, hook):
    failed_delivery(hook)
    pages = [
        page(alice_signed_in, "owner_webhooks", "alice"),
        page(alice_signed_in, "owner_webhook", "alice", hook.pk),
        alice_signed_in.post(
            url("owner_webhook", "alice", hook.pk), form_data(url="ftp://x", secret="typed-one")
        ),
    ]

    for response in pages:
        assert response.status_code == 200
        assert SECRET not in response.text
        assert "typed-one" not in response.text


def test_editing_with_the_secret_left_empty_keeps_it(alice_signed_in, hook):
    response = alice_signed_in.post(
        url("owner_webhook", "alice", hook.pk),
        form_data(url="https://ci.example.com/other", events=["delete"], is_active=None),
    )

    assert response.status_code == 302
    hook.refresh_from_db()
    assert (hook.url, hook.events, hook.is_active) == (
        "https://ci.example.com/other",
        ["delete"],
        False,
    )
    assert hook.secret == SECRET
    assert hook.name_filter == ""


def test_editing_replaces_or_removes_the_secret(alice_signed_in, hook):
    edit = url("owner_webhook", "alice", hook.pk)

    alice_signed_in.post(edit, form_data(secret="new-one"))
    hook.refresh_from_db()
    assert hook.secret == "new-one"

    alice_signed_in.post(edit, form_data(remove_secret="on"))
    hook.refresh_from_db()
    assert hook.secret == ""


def test_a_new_secret_and_its_removal_together_are_refused(alice_signed_in, hook):
    response = alice_signed_in.post(
        url("owner_webhook", "alice", hook.pk), form_data(secret="new-one", remove_secret="on")
    )

    assert response.status_code == 200
    assert "not both" in response.text
    hook.refresh_from_db()
    assert hook.secret == SECRET


def test_a_refused_edit_changes_nothing(alice_signed_in, hook):
    response = alice_signed_in.post(
        url("owner_webhook", "alice", hook.pk), form_data(url="gopher://x", secret="other")
    )

    assert response.status_code == 200
    assert "http:// or https://" in " ".join(response.context["form"].errors["url"])
    hook.refresh_from_db()
    assert (hook.url, hook.secret) == ("https://ci.example.com/hook", SECRET)


def test_deleting_a_webhook_removes_it_and_its_deliveries(alice_signed_in, hook):
    failed_delivery(hook)

    response = alice_signed_in.post(url("owner_webhook_delete", "alice", hook.pk))

    assert response.status_code == 302
    assert response.url == url("owner_webhooks", "alice")
    assert not Webhook.objects.exists()
    assert not WebhookDelivery.objects.exists()


def test_deleting_needs_a_post(alice_signed_in, hook):
    assert page(alice_signed_in, "owner_webhook_delete", "alice", hook.pk).status_code == 405
    assert Webhook.objects.filter(pk=hook.pk).exists()


def test_the_forms_are_posted_with_csrf(alice, hook):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)

    assert strict.post(url("owner_webhook_new", "alice"), form_data()).status_code == 403
    assert strict.post(url("owner_webhook_delete", "alice", hook.pk)).status_code == 403
    assert strict.post(url("owner_webhook_test", "alice", hook.pk)).status_code == 403
    assert "csrfmiddlewaretoken" in page(strict, "owner_webhook", "alice", hook.pk).text
    assert Webhook.objects.count() == 1


# Deliveries, test delivery, redelivery


def row_of(text: str, delivery: WebhookDelivery) -> str:
    """The deliveries table's row of this delivery, with its cells' text run together."""
    row = next(row for row in text.split("<tr>") if str(delivery.event_id) in row)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row.split("</tr>")[0])).strip()


def test_the_webhook_page_lists_its_last_deliveries(alice_signed_in, hook):
    failed = failed_delivery(hook)
    delivered = WebhookDelivery.objects.create(
        webhook=hook,
        event_type="delete",
        body=b"{}",
        status=WebhookDelivery.DELIVERED,
        attempts=1,
        last_status_code=204,
        last_duration_ms=17,
    )

    text = page(alice_signed_in, "owner_webhook", "alice", hook.pk).text

    assert row_of(text, failed).startswith(f"push {failed.event_id} failed 503 42 ms 5 — HTTP 503")
    assert row_of(text, delivered).startswith(
        f"delete {delivered.event_id} delivered 204 17 ms 1 —"
    )


def test_the_webhook_page_shows_the_last_twenty_deliveries(alice_signed_in, hook):
    oldest = failed_delivery(hook)
    for _ in range(20):
        WebhookDelivery.objects.create(webhook=hook, event_type="pull", body=b"{}")

    response = page(alice_signed_in, "owner_webhook", "alice", hook.pk)

    shown = response.context["deliveries"]
    assert len(shown) == 20
    assert oldest not in shown


def test_a_test_delivery_queues_a_ping(alice_signed_in, hook):
    response = alice_signed_in.post(url("owner_webhook_test", "alice", hook.pk))

    assert response.status_code == 302
    assert response.url == url("owner_webhook", "alice", hook.pk)
    delivery = hook.deliveries.get()
    assert (delivery.event_type, delivery.status) == ("ping", WebhookDelivery.PENDING)
    assert b'"action":"ping"' in bytes(delivery.body)
    assert "ping" in page(alice_signed_in, "owner_webhook", "alice", hook.pk).text


def test_redeliver_queues_a_failed_delivery_from_its_first_attempt(alice_signed_in, hook):
    failed = failed_delivery(hook)

    response = alice_signed_in.post(url("owner_webhook_redeliver", "alice", hook.pk, failed.pk))

    assert response.status_code == 302
    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.claimed_until) == (
        WebhookDelivery.PENDING,
        0,
        None,
    )
    assert failed.next_attempt_at <= timezone.now()


def test_redeliver_refuses_another_webhooks_delivery(alice_signed_in, hook, org_hook):
    other = failed_delivery(org_hook)

    response = alice_signed_in.post(url("owner_webhook_redeliver", "alice", hook.pk, other.pk))

    assert response.status_code == 404
    other.refresh_from_db()
    assert other.status == WebhookDelivery.FAILED


def test_org_writers_may_not_test_or_redeliver(client, org_hook, bob, reader_of):
    reader_of(bob, "write")
    client.force_login(bob)
    failed = failed_delivery(org_hook)

    assert client.post(url("owner_webhook_test", "acme", org_hook.pk)).status_code == 403
    redeliver = url("owner_webhook_redeliver", "acme", org_hook.pk, failed.pk)
    assert client.post(redeliver).status_code == 403
    failed.refresh_from_db()
    assert failed.status == WebhookDelivery.FAILED
    assert org_hook.deliveries.count() == 1
