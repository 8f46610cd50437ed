"""A process reuses the manifests pulls found only while no image or owner has changed."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from registry_helpers import ALICE, push_image, send

from packages_core import shared_cache
from packages_core.models import Owner, PackageVersion
from packages_core.models.owners import Visibility
from registry import generation

pytestmark = pytest.mark.django_db

TAG = "/v2/alice/app/manifests/1.0"


def pulled_digest(client, path: str = TAG, **extra) -> str | int:
    response = send(client, "HEAD", path, **extra)
    return (
        response["Docker-Content-Digest"] if response.status_code == 200 else response.status_code
    )


def queries_of_pull(client, path: str = TAG) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert send(client, "HEAD", path).status_code == 200
    return len(captured)


def another_node_changed_an_image() -> None:
    """What another process's word of a change leaves here: a new token in the shared
    cache, this process's copies untouched.
    """
    shared_cache.set(generation.KEY, "made elsewhere", None)


def test_a_pull_found_before_asks_the_database_nothing(client, alice):
    push_image(client, "alice/app", "1.0")
    assert queries_of_pull(client) == 1

    assert queries_of_pull(client) == 0


def test_a_tag_pushed_again_is_pulled_at_once(client, alice):
    first = push_image(client, "alice/app", "1.0", layers=(b"one",))
    assert pulled_digest(client) == first.digest

    second = push_image(client, "alice/app", "1.0", layers=(b"two",))

    assert pulled_digest(client) == second.digest != first.digest


def test_a_deleted_tag_is_gone_at_once(client, alice):
    image = push_image(client, "alice/app", "1.0")
    assert pulled_digest(client) == image.digest

    assert send(client, "DELETE", TAG, auth=ALICE).status_code == 202

    assert pulled_digest(client) == 404


def test_an_owner_made_private_is_not_pulled_anonymously_at_once(client, alice):
    push_image(client, "alice/app", "1.0")
    assert pulled_digest(client) != 401

    owner = Owner.objects.get(name="alice")
    owner.visibility = Visibility.PRIVATE
    owner.save(update_fields=["visibility"])

    assert pulled_digest(client) == 401


def test_a_change_announced_by_another_process_is_seen_at_once(client, alice):
    push_image(client, "alice/app", "1.0")
    assert queries_of_pull(client) == 1
    assert queries_of_pull(client) == 0

    another_node_changed_an_image()

    assert queries_of_pull(client) == 1


def test_an_unannounced_change_lives_at_most_pull_cache_seconds(client, alice, settings):
    settings.REGISTRY = {**getattr(settings, "REGISTRY", {}), "PULL_CACHE_SECONDS": 0.3}
    image = push_image(client, "alice/app", "1.0")
    assert pulled_digest(client) == image.digest
    # A write that says nothing (no service does this): the copy is the stale one.
    PackageVersion.objects.filter(version="1.0").update(version="2.0")
    assert pulled_digest(client) == image.digest

    time.sleep(0.35)

    assert pulled_digest(client) == 404


def test_with_the_cache_down_every_pull_asks_the_database(client, alice, settings):
    image = push_image(client, "alice/app", "1.0")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }

    assert pulled_digest(client) == image.digest
    assert queries_of_pull(client) == 1
    assert queries_of_pull(client) == 1


def test_a_commit_announces_the_change_again(alice, django_capture_on_commit_callbacks):
    from packages_core import changes

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        changes.changed()
        token_now = generation.current()
    assert token_now is not None
    for callback in callbacks:
        callback()

    assert generation.current() not in (None, token_now)


def test_pulls_of_another_reference_are_kept_apart(client, alice):
    one = push_image(client, "alice/app", "1.0", layers=(b"one",))
    two = push_image(client, "alice/app", "2.0", layers=(b"two",))

    assert pulled_digest(client) == one.digest
    assert pulled_digest(client, "/v2/alice/app/manifests/2.0") == two.digest
    assert pulled_digest(client, f"/v2/alice/app/manifests/{two.digest}") == two.digest
    assert pulled_digest(client) == one.digest
