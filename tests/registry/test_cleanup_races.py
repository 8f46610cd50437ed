"""Requests that cleanup overtakes half way answer with the OCI error for what is gone.

Each test lets a request get past its lookup, then runs a zero-grace cleanup (its
storage deletions included) before the request reads what it found: the windows
tests/registry/test_gc_concurrency.py hit under load, opened on purpose. Never a 500.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from packages_core.models import BlobUpload
from packages_core.services import uploads
from packages_core.services.cleanup import run_cleanup
from registry import images, pull_cache
from tests.registry_helpers import (
    ALICE,
    assert_error,
    digest_of,
    image_config,
    image_manifest,
    push_blob,
    push_image,
    put_manifest,
    send,
    start_upload,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def cleanup_now(django_capture_on_commit_callbacks):
    """Run every cleanup step with no grace period, objects deleted as on commit."""

    def run():
        with django_capture_on_commit_callbacks(execute=True):
            return run_cleanup(grace=timedelta(0))

    return run


def test_a_manifest_whose_config_is_collected_as_it_is_read_is_blob_unknown(
    client, alice, monkeypatch, cleanup_now
):
    config, layer = image_config(), b"layer bytes"
    push_blob(client, "alice/app", config)
    push_blob(client, "alice/app", layer)
    found_files = images._referenced_files

    def then_cleanup(*args, **kwargs):
        files = found_files(*args, **kwargs)
        assert cleanup_now().blobs == 2
        return files

    monkeypatch.setattr(images, "_referenced_files", then_cleanup)
    response = put_manifest(client, "alice/app", "1.0", image_manifest(config, [layer]))

    assert_error(response, 404, "BLOB_UNKNOWN")


def test_a_finish_for_a_session_dropped_as_it_is_rehashed_is_upload_unknown(
    client, alice, monkeypatch, cleanup_now
):
    location = start_upload(client, "alice/app")
    first = send(client, "PATCH", location, b"a" * 1000, HTTP_CONTENT_RANGE="0-999", auth=ALICE)
    assert first.status_code == 202
    # No hash state to go on from (sealed under an older key, say): finishing re-reads.
    BlobUpload.objects.update(hash_state=b"")
    rehash = uploads._rehash

    def after_cleanup(upload, store, **kwargs):
        assert cleanup_now().uploads == 1
        return rehash(upload, store, **kwargs)

    monkeypatch.setattr(uploads, "_rehash", after_cleanup)
    response = send(client, "PUT", f"{location}?digest={digest_of(b'a' * 1000)}", b"", auth=ALICE)

    assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")


def test_a_manifest_deleted_and_collected_as_it_is_pulled_is_manifest_unknown(
    client, alice, monkeypatch, cleanup_now, settings
):
    settings.REGISTRY = {**getattr(settings, "REGISTRY", {}), "SERVE_DIRECT": False}
    push_image(client, "alice/app", "1.0")
    resolve = pull_cache.resolve_manifest

    def then_delete_and_collect(owner_name, image, reference):
        owner, found = resolve(owner_name, image, reference)
        images.delete_manifest(owner, image, reference)
        assert cleanup_now().blobs == 3
        return owner, found

    monkeypatch.setattr(pull_cache, "resolve_manifest", then_delete_and_collect)
    response = send(client, "GET", "/v2/alice/app/manifests/1.0", auth=ALICE)

    assert_error(response, 404, "MANIFEST_UNKNOWN")
