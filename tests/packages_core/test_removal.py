"""Removing owners, upload sessions and versions: nothing of theirs is left behind, blobs
stay for GC, and what a package type says other versions need stays.
"""

import io

import pytest

from packages_core import types
from packages_core.exceptions import InUse
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


class _NeedsFirst(types.RemovalPolicy):
    """A made-up type's rule: version "1" is needed by "2"; removing "2" takes "1" along."""

    def needed_by(self, version, going):
        others = version.package.versions.exclude(pk__in=going)
        if version.version == "1" and others.filter(version="2").exists():
            return ["version 2"]
        return []

    def freed_by(self, version, going):
        if version.version == "2":
            return list(version.package.versions.filter(version="1"))
        return []


@pytest.fixture
def chained(alice):
    package_type = types.PackageType(name="chained", label="Chained", removal_policy=_NeedsFirst())
    types.register(package_type)
    try:
        package = versions.get_or_create_package(Owner.objects.get(user=alice), "chained", "p")
        yield {name: versions.get_or_create_version(package, name)[0] for name in ("1", "2")}
    finally:
        types.unregister("chained")


def test_a_version_its_type_says_others_need_is_not_removed(chained):
    with pytest.raises(InUse) as refusal:
        versions.remove_version(chained["1"])

    assert refusal.value.needed_by == ["version 2"]
    assert PackageVersion.objects.filter(pk=chained["1"].pk).exists()


def test_removing_the_version_that_needed_it_takes_it_along(chained):
    versions.remove_version(chained["2"])

    assert not PackageVersion.objects.filter(package__type="chained").exists()


def test_versions_removed_together_do_not_hold_each_other_back(chained):
    versions.remove_versions([chained["1"], chained["2"]])

    assert not PackageVersion.objects.filter(package__type="chained").exists()


def test_a_whole_package_goes_whatever_its_versions_need(chained):
    versions.remove_package(chained["1"].package)

    assert not Package.objects.filter(type="chained").exists()
