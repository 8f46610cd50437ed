"""Delete events of a package type without events of its own (tests/generic_files): Gitea's
type-agnostic package event, from every face, and nothing for Distribution webhooks.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from packages_core.models import CleanupRule, PackageVersion
from packages_core.services import cleanup, versions, webhooks
from tests.api_helpers import signed_in, version_url
from tests.generic_files.services import publish

pytestmark = pytest.mark.django_db

SECRET = "hook-secret"


@pytest.fixture
def gitea_hook(alice, receiver):
    return webhooks.create_webhook(alice.package_owner, receiver.url, secret=SECRET)


def put(alice, package: str, version: str) -> PackageVersion:
    file = publish(alice.package_owner, alice, package, version, "f.txt", io.BytesIO(b"x"))
    return file.version


def delivered(receiver) -> list[dict]:
    call_command("deliver_events", "--once")
    assert all(got.signed_with(SECRET) for got in receiver.received)
    return [got.json for got in receiver.events("delete")]


def test_an_api_delete_of_a_generic_version_is_a_gitea_package_event(alice, gitea_hook, receiver):
    put(alice, "notes", "0.1")

    response = signed_in(alice).delete(version_url("alice", "notes", "0.1", type="generic"))

    assert response.status_code == 204
    (body,) = delivered(receiver)
    assert body["action"] == "deleted"
    package = body["package"]
    assert (package["name"], package["type"], package["version"]) == ("notes", "generic", "0.1")
    assert package["owner"]["login"] == "alice"
    assert package["html_url"] == ""  # the type has no pages
    assert body["sender"]["login"] == "alice"


def test_a_distribution_webhook_hears_nothing_of_a_type_without_manifests(
    alice, gitea_hook, receiver
):
    webhooks.create_webhook(alice.package_owner, receiver.url, format="distribution")
    version = put(alice, "notes", "0.1")

    versions.remove_version(version, actor=alice)

    assert len(delivered(receiver)) == 1
    assert receiver.received[0].headers["Content-Type"] == "application/json"


def test_a_cleanup_run_names_cleanup_as_the_sender(alice, gitea_hook, receiver):
    put(alice, "notes", "0.1")
    put(alice, "notes", "0.2")  # the newest stays: the type's policy
    CleanupRule.objects.create(owner=alice.package_owner, type="generic", keep_count=0)

    assert cleanup.run_cleanup().versions == 1

    (body,) = delivered(receiver)
    assert body["package"]["version"] == "0.1"
    assert body["sender"]["login"] == webhooks.CLEANUP_ACTOR


def test_removing_a_package_announces_each_of_its_versions(alice, gitea_hook, receiver):
    first = put(alice, "notes", "0.1")
    put(alice, "notes", "0.2")

    versions.remove_package(first.package, actor=alice)

    assert sorted(body["package"]["version"] for body in delivered(receiver)) == ["0.1", "0.2"]
