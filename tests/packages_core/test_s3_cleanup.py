"""Cleanup on S3 (moto's server on loopback): deleting frees the bucket's objects."""

from __future__ import annotations

from datetime import timedelta

import pytest

from packages_core.models import BlobDeletion, BlobUpload, PackageBlob
from packages_core.models.blobs import blob_key
from packages_core.services.cleanup import run_cleanup
from tests.registry_helpers import ALICE, image_config, push_blob, push_image, send, start_upload

pytestmark = pytest.mark.django_db

NOW = timedelta(0)


def blob_objects(bucket) -> set[str]:
    return set(bucket.list_keys("blobs/"))


def test_deleting_a_tag_and_cleaning_up_empties_the_bucket(
    client, alice, s3_storage, django_capture_on_commit_callbacks
):
    image = push_image(client, "alice/app", "1.0", layers=(b"a" * 70_000, b"b" * 90_000))
    stored = blob_objects(s3_storage)
    assert len(stored) == 4  # config, two layers, the manifest
    assert (
        send(client, "DELETE", f"/v2/alice/app/manifests/{image.digest}", auth=ALICE).status_code
        == 202
    )
    sizes = sum(PackageBlob.objects.values_list("size", flat=True))
    assert sizes == 70_000 + 90_000 + len(image.manifest) + len(image_config())

    with django_capture_on_commit_callbacks(execute=True):
        report = run_cleanup(grace=NOW)

    assert (report.versions, report.blobs, report.packages) == (0, 4, 1)
    assert report.bytes_freed == sizes
    assert blob_objects(s3_storage) == set()
    assert not BlobDeletion.objects.exists()
    assert not PackageBlob.objects.exists()


def test_an_idle_chunked_upload_loses_its_pieces(
    client, alice, s3_storage, django_capture_on_commit_callbacks
):
    location = start_upload(client, "alice/app")
    for start, piece in ((0, b"x" * 1000), (1000, b"y" * 500)):
        response = send(
            client,
            "PATCH",
            location,
            piece,
            auth=ALICE,
            HTTP_CONTENT_RANGE=f"{start}-{start + len(piece) - 1}",
        )
        assert response.status_code == 202, response.content
    assert len(s3_storage.list_keys("uploads/")) == 2

    with django_capture_on_commit_callbacks(execute=True):
        report = run_cleanup(grace=NOW)

    assert (report.uploads, report.bytes_freed) == (1, 1500)
    assert s3_storage.list_keys("uploads/") == []
    assert not BlobUpload.objects.exists()


def test_a_blob_still_used_elsewhere_stays_in_the_bucket(
    client, alice, s3_storage, django_capture_on_commit_callbacks
):
    shared = b"shared layer" * 1000
    kept = push_image(client, "alice/keep", "1.0", layers=(shared,))
    gone = push_image(client, "alice/gone", "1.0", layers=(shared, b"own layer" * 100))
    assert (
        send(client, "DELETE", f"/v2/alice/gone/manifests/{gone.digest}", auth=ALICE).status_code
        == 202
    )

    with django_capture_on_commit_callbacks(execute=True):
        report = run_cleanup(grace=NOW)

    # Only the deleted image's own layer and manifest go; the config and the shared
    # layer are still used by the kept image.
    assert report.blobs == 2
    remaining = blob_objects(s3_storage)
    for digest in (kept.config_digest, *kept.layer_digests, kept.digest):
        assert blob_key(digest.partition(":")[2]) in remaining
    assert blob_key(gone.digest.partition(":")[2]) not in remaining


def test_a_staged_blob_within_the_grace_period_stays(
    client, alice, s3_storage, django_capture_on_commit_callbacks
):
    digest = push_blob(client, "alice/app", b"fresh bytes")

    with django_capture_on_commit_callbacks(execute=True):
        report = run_cleanup(grace=timedelta(hours=1))

    assert (report.staged_files, report.blobs) == (0, 0)
    assert blob_key(digest.partition(":")[2]) in blob_objects(s3_storage)
