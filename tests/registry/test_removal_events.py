"""Delete events from every face that removes container versions: /v2, the pages, the
REST API, the Django admin and cleanup rules, one event per version that goes.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse

from packages_core.models import CleanupRule, Owner, Package, PackageVersion, WebhookDelivery
from packages_core.services import versions, webhooks
from packages_core.services.cleanup import run_cleanup
from tests.api_helpers import signed_in, version_url
from tests.registry_helpers import (
    ALICE,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    index_manifest,
    push_image,
    put_manifest,
    send,
)

pytestmark = pytest.mark.django_db

SECRET = "hook-secret"
AMD64 = {"os": "linux", "architecture": "amd64"}


@pytest.fixture
def owner(alice):
    return Owner.objects.named("alice").get()


@pytest.fixture
def hook(owner, receiver):
    """alice's webhook hearing deletes, in Distribution's format (it names tag and digest)."""
    return webhooks.create_webhook(
        owner, receiver.url, secret=SECRET, events="delete", format="distribution"
    )


def deleted(receiver) -> list[dict]:
    """The delete events delivered so far: each one's event from its envelope."""
    call_command("deliver_events", "--once")
    found = []
    for got in receiver.events("delete"):
        assert got.signed_with(SECRET)
        (event,) = got.json["events"]
        assert event["action"] == "delete"
        found.append(event)
    return found


def tags_and_digests(events) -> list[tuple[str | None, str]]:
    return [(event["target"].get("tag"), event["target"]["digest"]) for event in events]


# /v2: one event per version, never twice


def test_a_v2_delete_by_tag_is_one_event(client, hook, receiver):
    pushed = push_image(client, "alice/app", "v1")
    push_image(client, "alice/app", "v2")

    assert send(client, "DELETE", "/v2/alice/app/manifests/v1", auth=ALICE).status_code == 202

    (event,) = deleted(receiver)
    assert tags_and_digests([event]) == [("v1", pushed.digest)]
    assert event["actor"] == {"name": "alice"}
    assert event["request"]["method"] == "DELETE"


def test_a_v2_delete_by_digest_is_one_event_per_tag_and_the_untagged_manifest(
    client, hook, receiver
):
    old = push_image(client, "alice/app", "v1", layers=(b"old",))
    push_image(client, "alice/app", "v1", layers=(b"new",))  # old is left untagged
    push_image(client, "alice/app", "v2", layers=(b"old",))

    response = send(client, "DELETE", f"/v2/alice/app/manifests/{old.digest}", auth=ALICE)

    assert response.status_code == 202
    assert sorted(tags_and_digests(deleted(receiver)), key=str) == sorted(
        [(None, old.digest), ("v2", old.digest)], key=str
    )


def test_untagging_a_manifest_an_index_needs_is_one_event_for_the_tag(client, hook, receiver):
    image = push_image(client, "alice/app", "1.0")
    body = index_manifest([(image.manifest, AMD64)])
    assert put_manifest(client, "alice/app", "multi", body).status_code == 201

    assert send(client, "DELETE", "/v2/alice/app/manifests/1.0", auth=ALICE).status_code == 202

    (event,) = deleted(receiver)
    assert tags_and_digests([event]) == [("1.0", image.digest)]
    assert event["target"]["mediaType"] == OCI_MANIFEST
    # The manifest stays, untagged, for its index.
    assert PackageVersion.objects.filter(version=image.digest).exists()


@pytest.fixture
def untagged_platform(client, hook):
    """alice/app:multi, an index listing a manifest pushed by digest only; no event queued."""
    platform = push_image(client, "alice/app", "placeholder")
    send(client, "DELETE", "/v2/alice/app/manifests/placeholder", auth=ALICE)
    push_image(client, "alice/app", platform.digest)
    body = index_manifest([(platform.manifest, AMD64)])
    assert put_manifest(client, "alice/app", "multi", body).status_code == 201
    WebhookDelivery.objects.all().delete()
    return platform


def test_deleting_an_index_announces_the_untagged_platforms_it_takes_along(
    client, untagged_platform, receiver
):
    assert send(client, "DELETE", "/v2/alice/app/manifests/multi", auth=ALICE).status_code == 202

    events = deleted(receiver)
    assert [event["target"]["mediaType"] for event in events] == [OCI_INDEX, OCI_MANIFEST]
    assert tags_and_digests(events)[1] == (None, untagged_platform.digest)


def test_a_rolled_back_delete_sends_nothing(client, hook, receiver, monkeypatch):
    push_image(client, "alice/app", "v1")
    written = webhooks.enqueue

    def crash(*args, **kwargs):
        written(*args, **kwargs)
        assert WebhookDelivery.objects.count() == 1  # in the delete's transaction
        raise RuntimeError("the delete fails after its event was written")

    monkeypatch.setattr(webhooks, "enqueue", crash)
    client.raise_request_exception = False

    response = send(client, "DELETE", "/v2/alice/app/manifests/v1", auth=ALICE)

    assert response.status_code == 500
    assert not WebhookDelivery.objects.exists()
    assert PackageVersion.objects.filter(version="v1").exists()
    assert deleted(receiver) == []


# The pages


def test_a_delete_on_the_pages_is_one_event(client, alice, hook, receiver):
    pushed = push_image(client, "alice/app", "v1")
    client.force_login(alice)

    url = reverse("registry_web:package_version_delete", args=["alice", "app", "v1"])
    assert client.post(url).status_code == 302

    (event,) = deleted(receiver)
    assert tags_and_digests([event]) == [("v1", pushed.digest)]
    assert event["actor"] == {"name": "alice"}


# The REST API


def test_an_api_delete_is_a_delete_event_naming_the_user(client, alice, hook, receiver):
    pushed = push_image(client, "alice/app", "v1", docker=True)

    response = signed_in(alice).delete(
        version_url("alice", "app", "v1"), HTTP_USER_AGENT="ci-bot/1"
    )

    assert response.status_code == 204
    (event,) = deleted(receiver)
    assert tags_and_digests([event]) == [("v1", pushed.digest)]
    assert event["target"]["mediaType"] == DOCKER_MANIFEST
    assert event["target"]["size"] == len(pushed.manifest)
    assert event["target"]["repository"] == "alice/app"
    assert event["actor"] == {"name": "alice"}
    assert event["request"]["method"] == "DELETE"
    assert event["request"]["useragent"] == "ci-bot/1"


def test_an_api_delete_sends_a_gitea_event_too(client, alice, owner, receiver):
    webhooks.create_webhook(owner, receiver.url, secret=SECRET, events="delete")
    push_image(client, "alice/app", "v1")

    assert signed_in(alice).delete(version_url("alice", "app", "v1")).status_code == 204

    call_command("deliver_events", "--once")
    (got,) = receiver.received
    assert got.json["action"] == "deleted"
    package = got.json["package"]
    assert (package["name"], package["type"], package["version"]) == ("app", "container", "v1")
    assert got.json["sender"]["login"] == "alice"


def test_an_api_delete_that_is_refused_sends_nothing(alice, untagged_platform, receiver):
    url = version_url("alice", "app", untagged_platform.digest)

    response = signed_in(alice).delete(url)

    assert response.status_code == 409
    assert deleted(receiver) == []


# The Django admin


def admin_changelist_url() -> str:
    return reverse("admin:packages_core_packageversion_changelist")


def test_an_admin_delete_of_a_version_names_the_admin(client, site_admin, hook, receiver):
    pushed = push_image(client, "alice/app", "v1")
    version = PackageVersion.objects.get(version="v1")
    client.force_login(site_admin)

    url = reverse("admin:packages_core_packageversion_delete", args=[version.pk])
    assert client.post(url, {"post": "yes"}).status_code == 302

    (event,) = deleted(receiver)
    assert tags_and_digests([event]) == [("v1", pushed.digest)]
    assert event["actor"] == {"name": site_admin.get_username()}
    assert event["request"]["method"] == "POST"


def test_the_admins_delete_action_is_one_event_per_selected_version(
    client, site_admin, hook, receiver
):
    first = push_image(client, "alice/app", "v1", layers=(b"one",))
    second = push_image(client, "alice/other", "v2", layers=(b"two",))
    push_image(client, "alice/app", "kept", layers=(b"three",))
    selected = list(
        PackageVersion.objects.filter(version__in=["v1", "v2"]).values_list("pk", flat=True)
    )
    client.force_login(site_admin)

    response = client.post(
        admin_changelist_url(),
        {"action": "delete_selected", "_selected_action": selected, "post": "yes"},
    )

    assert response.status_code == 302
    events = deleted(receiver)
    assert sorted(tags_and_digests(events)) == [("v1", first.digest), ("v2", second.digest)]
    assert {event["target"]["repository"] for event in events} == {"alice/app", "alice/other"}
    assert {event["actor"]["name"] for event in events} == {site_admin.get_username()}


def test_an_admin_delete_of_a_package_announces_each_version(client, site_admin, hook, receiver):
    one = push_image(client, "alice/app", "v1", layers=(b"one",))
    two = push_image(client, "alice/app", "v2", layers=(b"two",))
    package = Package.objects.get(name="app")
    client.force_login(site_admin)

    url = reverse("admin:packages_core_package_delete", args=[package.pk])
    assert client.post(url, {"post": "yes"}).status_code == 302

    assert sorted(tags_and_digests(deleted(receiver))) == [
        ("v1", one.digest),
        ("v2", two.digest),
    ]


# Cleanup rules


def test_a_cleanup_rule_announces_what_it_removes_as_cleanup(client, owner, hook, receiver):
    old = push_image(client, "alice/app", "old-1", layers=(b"old",))
    push_image(client, "alice/app", "keep", layers=(b"kept",))
    CleanupRule.objects.create(
        owner=owner, type="container", keep_count=0, remove_pattern=r"old-.*"
    )

    assert run_cleanup().versions == 1

    (event,) = deleted(receiver)
    assert tags_and_digests([event]) == [("old-1", old.digest)]
    assert event["actor"] == {"name": webhooks.CLEANUP_ACTOR}
    assert event["request"]["method"] == ""


def test_without_webhooks_a_removal_reads_nothing_for_events(client, alice, monkeypatch):
    push_image(client, "alice/app", "v1")
    monkeypatch.setattr(
        "registry.events.manifest_events", lambda *args: pytest.fail("read for no one")
    )

    versions.remove_versions(list(PackageVersion.objects.published()))

    assert not WebhookDelivery.objects.exists()
