"""Webhook events of /v2 pushes and deletes: one per tag, in both formats, field by field."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from packages_core.models import Owner, PackageVersion, WebhookDelivery
from packages_core.services import webhooks
from registry import events
from tests.registry_helpers import (
    ALICE,
    DOCKER_MANIFEST,
    OCI_MANIFEST,
    image_config,
    image_manifest,
    push_blob,
    push_image,
    put_manifest,
    send,
)

pytestmark = pytest.mark.django_db

SECRET = "hook-secret"


@pytest.fixture
def owner(alice):
    return Owner.objects.named("alice").get()


def hook(owner, receiver, **fields):
    return webhooks.create_webhook(owner, receiver.url, secret=SECRET, **fields)


def deliver():
    call_command("deliver_events", "--once")


def test_a_push_by_tag_sends_one_distribution_push_event(client, owner, receiver):
    hook(owner, receiver, format="distribution")
    client.defaults["HTTP_USER_AGENT"] = "docker/27"
    pushed = push_image(client, "alice/app", "v1", docker=True)
    deliver()
    (got,) = receiver.received
    assert got.signed_with(SECRET)
    assert got.headers["Content-Type"] == "application/vnd.docker.distribution.events.v1+json"
    assert got.headers["X-Forge-Event"] == "push"
    (event,) = got.json["events"]
    assert event["id"] == got.headers["X-Forge-Delivery"]
    uuid.UUID(event["id"])
    datetime.fromisoformat(event["timestamp"])
    assert event["action"] == "push"
    assert event["target"] == {
        "mediaType": DOCKER_MANIFEST,
        "digest": pushed.digest,
        "size": len(pushed.manifest),
        "length": len(pushed.manifest),
        "repository": "alice/app",
        "url": f"http://testserver/v2/alice/app/manifests/{pushed.digest}",
        "tag": "v1",
    }
    assert event["request"]["method"] == "PUT"
    assert event["request"]["host"] == "testserver"
    assert event["request"]["addr"] == "127.0.0.1"
    assert event["request"]["useragent"] == "docker/27"
    assert event["request"]["id"]
    assert event["actor"] == {"name": "alice"}
    assert set(event["source"]) == {"addr", "instanceID"}


def test_a_push_sends_a_gitea_package_event(client, owner, receiver, settings):
    settings.REGISTRY = {**settings.REGISTRY, "EXTERNAL_URL": "https://registry.example.com"}
    hook(owner, receiver)
    push_image(client, "alice/app", "v1")
    deliver()
    (got,) = receiver.received
    assert got.signed_with(SECRET)
    assert got.headers["X-Gitea-Event"] == "package"
    body = got.json
    assert body["action"] == "created"
    package = body["package"]
    assert package["owner"] == {"id": owner.pk, "login": "alice", "username": "alice"}
    assert (package["name"], package["type"], package["version"]) == ("app", "container", "v1")
    assert package["html_url"] == ("https://registry.example.com/alice/-/packages/container/app/v1")
    assert package["creator"]["login"] == "alice"
    assert body["sender"]["login"] == "alice"


def test_each_tag_pushed_is_an_event_and_a_repush_is_none(client, owner, receiver):
    hook(owner, receiver, format="distribution")
    first = push_image(client, "alice/app", "v1")
    push_image(client, "alice/app", "v1")  # the same manifest: nothing changed
    second = push_image(client, "alice/app", "latest")
    deliver()
    targets = [r.json["events"][0]["target"] for r in receiver.received]
    assert [(t["tag"], t["digest"]) for t in targets] == [
        ("v1", first.digest),
        ("latest", second.digest),
    ]
    assert all(t["mediaType"] == OCI_MANIFEST for t in targets)


def test_a_push_by_digest_has_no_tag(client, owner, receiver):
    hook(owner, receiver, format="distribution")
    pushed = push_image(client, "alice/app", "placeholder")
    send(client, "DELETE", "/v2/alice/app/manifests/placeholder", auth=ALICE)
    WebhookDelivery.objects.all().delete()
    push_image(client, "alice/other", pushed.digest)
    deliver()
    (got,) = receiver.received
    target = got.json["events"][0]["target"]
    assert "tag" not in target
    assert target["digest"] == pushed.digest


def test_a_delete_sends_a_delete_event(client, owner, receiver):
    hook(owner, receiver, format="distribution", events="delete")
    pushed = push_image(client, "alice/app", "v1")
    response = send(client, "DELETE", "/v2/alice/app/manifests/v1", auth=ALICE)
    assert response.status_code == 202
    deliver()
    (got,) = receiver.received
    assert got.headers["X-Forge-Event"] == "delete"
    event = got.json["events"][0]
    assert event["action"] == "delete"
    assert (event["target"]["tag"], event["target"]["digest"]) == ("v1", pushed.digest)
    assert event["request"]["method"] == "DELETE"


def test_a_delete_by_digest_names_every_tag_it_removes_in_gitea(client, owner, receiver):
    hook(owner, receiver, events="delete")
    pushed = push_image(client, "alice/app", "v1")
    push_image(client, "alice/app", "v2")
    send(client, "DELETE", f"/v2/alice/app/manifests/{pushed.digest}", auth=ALICE)
    deliver()
    assert sorted(r.json["package"]["version"] for r in receiver.received) == ["v1", "v2"]
    assert {r.json["action"] for r in receiver.received} == {"deleted"}


def test_filter_and_events_are_respected_on_pushes(client, owner, receiver):
    hook(owner, receiver, name_filter="team/*")
    hook(owner, receiver, events="delete")
    push_image(client, "alice/app", "v1")
    push_image(client, "alice/team/api", "v1")
    deliver()
    assert [r.json["package"]["name"] for r in receiver.received] == ["team/api"]


def test_an_org_webhook_and_a_site_webhook_both_hear_an_org_push(client, org, receiver):
    hook(Owner.objects.named("acme").get(), receiver)
    hook(None, receiver)
    push_image(client, "acme/app", "v1")
    deliver()
    assert len(receiver.received) == 2


def test_a_rolled_back_push_sends_nothing(client, owner, receiver, monkeypatch):
    hook(owner, receiver)
    written = events.pushed

    def crash(*args, **kwargs):
        written(*args, **kwargs)
        assert WebhookDelivery.objects.count() == 1  # in the push's transaction
        raise RuntimeError("the push fails after its event was written")

    monkeypatch.setattr(events, "pushed", crash)
    client.raise_request_exception = False
    response = push_manifest_only(client)
    assert response.status_code == 500
    assert not WebhookDelivery.objects.exists()
    assert not PackageVersion.objects.filter(version="v1").exists()
    deliver()
    assert not receiver.received


def push_manifest_only(client):
    config, layer = image_config(), b"layer"
    push_blob(client, "alice/app", config)
    push_blob(client, "alice/app", layer)
    return put_manifest(client, "alice/app", "v1", image_manifest(config, [layer]))


def test_a_delete_on_the_pages_sends_a_delete_event(client, alice, owner, receiver):
    hook(owner, receiver, format="distribution", events="delete")
    pushed = push_image(client, "alice/app", "v1")
    client.force_login(alice)
    url = reverse("registry_web:package_version_delete", args=["alice", "app", "v1"])
    assert client.post(url).status_code == 302
    deliver()
    (got,) = receiver.received
    event = got.json["events"][0]
    assert (event["action"], event["target"]["tag"]) == ("delete", "v1")
    assert event["target"]["digest"] == pushed.digest
    assert event["actor"] == {"name": "alice"}
    assert event["request"]["method"] == "POST"


def test_a_push_without_webhooks_writes_no_delivery_and_asks_once(client, owner, settings):
    settings.PACKAGES = {**settings.PACKAGES, "WEBHOOK_CACHE_SECONDS": 600}
    push_image(client, "alice/app", "v1")
    with CaptureQueriesContext(connection) as queries:
        push_image(client, "alice/app", "v2")
    assert not WebhookDelivery.objects.exists()
    # The owner's and the site's webhooks were looked up by the first push, not again.
    assert not [q for q in queries if "packages_core_webhook" in (q["sql"] or "")]


def test_pulls_are_events_only_for_a_webhook_that_asks(client, owner, receiver):
    hook(owner, receiver, format="distribution", events="pull")
    hook(owner, receiver)  # push and delete: no pulls
    pushed = push_image(client, "alice/app", "v1")
    WebhookDelivery.objects.all().delete()
    assert send(client, "HEAD", "/v2/alice/app/manifests/v1", auth=ALICE).status_code == 200
    assert send(client, "GET", "/v2/alice/app/manifests/v1", auth=ALICE).status_code == 200
    deliver()
    (got,) = receiver.received
    assert got.headers["X-Forge-Event"] == "pull"
    event = got.json["events"][0]
    assert event["action"] == "pull"
    assert (event["target"]["tag"], event["target"]["digest"]) == ("v1", pushed.digest)
    assert event["request"]["method"] == "GET"


def test_a_pull_is_served_when_its_event_cannot_be_written(client, owner, receiver, monkeypatch):
    from django.db import OperationalError

    hook(owner, receiver, events="pull")
    push_image(client, "alice/app", "v1")

    def read_only(*args, **kwargs):
        raise OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(events.webhooks, "enqueue", read_only)
    assert send(client, "GET", "/v2/alice/app/manifests/v1", auth=ALICE).status_code == 200
