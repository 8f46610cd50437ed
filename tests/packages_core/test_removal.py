"""Removing owners and upload sessions: nothing of theirs is left behind, blobs stay for GC."""

import io

import pytest

from packages_core.models import BlobUpload, Owner, Package, PackageProperty, PackageVersion
from packages_core.services import blobs, owners, properties, uploads, versions
from packages_core.services.properties import RefType

pytestmark = pytest.mark.django_db


def test_remove_owner_drops_its_packages_versions_and_their_properties(store, org):
    blob = blobs.store_blob(io.BytesIO(b"layer"), store=store).blob
    package = versions.get_or_create_package(org, "container", "web")
    version, _ = versions.get_or_create_version(package, "1.0")
    file = versions.add_file(version, blob, "layer", properties_={"digest": "x"})
    properties.set_property(RefType.VERSION, version.pk, "tag", "1.0")
    properties.set_property(RefType.PACKAGE, package.pk, "repo", "web")

    owners.remove_owner(org)

    assert not Owner.objects.filter(pk=org.pk).exists()
    assert not Package.objects.exists()
    assert not PackageVersion.objects.exists()
    assert not PackageProperty.objects.filter(ref_id__in=[file.pk, version.pk, package.pk]).exists()
    assert store.exists(blob.storage_key), "blobs go only through garbage collection"


def test_discard_upload_deletes_the_row_and_its_staged_bytes(
    store, alice, django_capture_on_commit_callbacks
):
    key = blobs.staging_key()
    store.save(key, io.BytesIO(b"half a layer"))
    upload = BlobUpload.objects.create(
        owner=alice.package_owner, package_name="web", storage_key=key
    )

    with django_capture_on_commit_callbacks(execute=True):
        uploads.discard_upload(upload, store=store)

    assert not BlobUpload.objects.exists()
    assert not store.exists(key)


def test_discarded_upload_keeps_its_bytes_until_the_transaction_commits(store, alice):
    key = blobs.staging_key()
    store.save(key, io.BytesIO(b"half a layer"))
    upload = BlobUpload.objects.create(
        owner=alice.package_owner, package_name="web", storage_key=key
    )

    uploads.discard_upload(upload, store=store)

    # The test's transaction never commits, so the delete must not have happened.
    assert store.exists(key)
