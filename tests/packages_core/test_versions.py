"""Packages, versions, files and their properties: creating, replacing and removing them."""

import io

import pytest

from packages_core.exceptions import InvalidInput, NameTaken
from packages_core.models import Package, PackageBlob, PackageFile, PackageProperty, PackageVersion
from packages_core.services import properties, versions
from packages_core.services.blobs import store_blob
from packages_core.services.properties import RefType

pytestmark = pytest.mark.django_db


@pytest.fixture
def other_blob(store):
    return store_blob(io.BytesIO(b"other layer bytes"), store=store).blob


# Packages


def test_get_or_create_package_makes_a_missing_package(alice):
    package = versions.get_or_create_package(alice.package_owner, "container", "web")

    assert Package.objects.get() == package
    assert (package.owner, package.type, package.name) == (alice.package_owner, "container", "web")


def test_get_or_create_package_finds_the_package_case_insensitively(package):
    found = versions.get_or_create_package(package.owner, package.type, "WEB")

    assert found.pk == package.pk
    assert found.name == "web"
    assert Package.objects.count() == 1


def test_get_or_create_package_keeps_types_apart(package):
    other = versions.get_or_create_package(package.owner, "npm", package.name)

    assert other.pk != package.pk


def test_get_or_create_package_keeps_owners_apart(package, bob):
    other = versions.get_or_create_package(bob.package_owner, package.type, package.name)

    assert other.pk != package.pk
    assert other.owner == bob.package_owner


def test_a_package_needs_a_name(alice):
    with pytest.raises(InvalidInput):
        versions.get_or_create_package(alice.package_owner, "container", "")


# Versions


def test_create_version_makes_a_version_with_its_fields(package, alice):
    version = versions.create_version(
        package, "2.0", creator=alice, is_internal=True, metadata={"os": "linux"}
    )

    version.refresh_from_db()
    assert version.package == package
    assert version.version == "2.0"
    assert version.creator == alice
    assert version.is_internal is True
    assert version.metadata == {"os": "linux"}


def test_create_version_refuses_an_existing_version_name(version):
    with pytest.raises(NameTaken):
        versions.create_version(version.package, version.version)


def test_create_version_refuses_an_existing_version_name_in_another_case(package):
    versions.create_version(package, "Latest")

    with pytest.raises(NameTaken):
        versions.create_version(package, "LATEST")

    assert package.versions.count() == 1


def test_get_or_create_version_finds_the_version_case_insensitively(package):
    made, made_created = versions.get_or_create_version(package, "Latest")

    found, found_created = versions.get_or_create_version(package, "latest")

    assert (made_created, found_created) == (True, False)
    assert found.pk == made.pk


def test_a_version_needs_a_name(package):
    with pytest.raises(InvalidInput):
        versions.get_or_create_version(package, "")


# Files


def test_add_file_attaches_the_blob_to_the_version(version, blob):
    file = versions.add_file(version, blob, "layer.tar", composite_key="k", is_lead=True)

    file.refresh_from_db()
    assert (file.version, file.blob, file.name) == (version, blob, "layer.tar")
    assert file.composite_key == "k"
    assert file.is_lead is True


def test_add_file_stores_the_files_properties(version, blob):
    file = versions.add_file(version, blob, "layer.tar", properties_={"media": "tar", "n": 3})

    assert properties.get_properties(RefType.FILE, file.pk) == {"media": "tar", "n": "3"}


def test_add_file_refuses_a_name_the_version_already_has(version, blob, other_blob):
    versions.add_file(version, blob, "layer.tar")

    with pytest.raises(NameTaken):
        versions.add_file(version, other_blob, "LAYER.tar")

    assert version.files.get().blob == blob


def test_add_file_allows_the_same_name_under_another_composite_key(version, blob):
    versions.add_file(version, blob, "layer.tar", composite_key="amd64")
    versions.add_file(version, blob, "layer.tar", composite_key="arm64")

    assert version.files.count() == 2


def test_add_file_with_replace_swaps_the_file(version, blob, other_blob):
    old = versions.add_file(version, blob, "layer.tar")

    new = versions.add_file(version, other_blob, "layer.tar", replace=True)

    assert list(version.files.all()) == [new]
    assert new.blob == other_blob
    assert not PackageFile.objects.filter(pk=old.pk).exists()


def test_add_file_with_replace_drops_the_old_files_properties(version, blob, other_blob):
    old = versions.add_file(version, blob, "layer.tar", properties_={"old": "1"})

    new = versions.add_file(
        version, other_blob, "layer.tar", properties_={"new": "2"}, replace=True
    )

    assert properties.get_properties(RefType.FILE, old.pk) == {}
    assert properties.get_properties(RefType.FILE, new.pk) == {"new": "2"}


def test_add_file_with_replace_keeps_the_old_blob(version, blob, other_blob, store):
    versions.add_file(version, blob, "layer.tar")

    versions.add_file(version, other_blob, "layer.tar", replace=True)

    assert PackageBlob.objects.filter(pk=blob.pk).exists()
    assert store.exists(blob.storage_key)


# Removing


def test_remove_version_deletes_the_version_and_its_files(version, blob):
    versions.add_file(version, blob, "a")
    versions.add_file(version, blob, "b")

    versions.remove_version(version)

    assert not PackageVersion.objects.filter(pk=version.pk).exists()
    assert PackageFile.objects.count() == 0


def test_remove_version_deletes_version_and_file_properties(version, blob):
    file = versions.add_file(version, blob, "a", properties_={"f": "1"})
    properties.set_property(RefType.VERSION, version.pk, "v", "1")

    versions.remove_version(version)

    assert not PackageProperty.objects.filter(ref_type=RefType.FILE, ref_id=file.pk).exists()
    assert not PackageProperty.objects.filter(ref_type=RefType.VERSION, ref_id=version.pk).exists()


def test_remove_version_leaves_the_blob_row_and_object(version, blob, store):
    versions.add_file(version, blob, "a")

    versions.remove_version(version)

    assert PackageBlob.objects.filter(pk=blob.pk).exists()
    assert store.exists(blob.storage_key)


def test_remove_version_leaves_other_versions_alone(version, blob):
    other = versions.create_version(version.package, "2.0")
    kept = versions.add_file(other, blob, "a", properties_={"keep": "me"})
    properties.set_property(RefType.VERSION, other.pk, "keep", "me")

    versions.remove_version(version)

    assert list(other.files.all()) == [kept]
    assert properties.get_properties(RefType.FILE, kept.pk) == {"keep": "me"}
    assert properties.get_properties(RefType.VERSION, other.pk) == {"keep": "me"}


def test_remove_package_deletes_the_package_with_versions_and_files(version, blob):
    versions.add_file(version, blob, "a")
    versions.create_version(version.package, "2.0")

    versions.remove_package(version.package)

    assert Package.objects.count() == 0
    assert PackageVersion.objects.count() == 0
    assert PackageFile.objects.count() == 0


def test_remove_package_deletes_every_property_it_held(version, blob):
    package = version.package
    file = versions.add_file(version, blob, "a", properties_={"f": "1"})
    properties.set_property(RefType.VERSION, version.pk, "v", "1")
    properties.set_property(RefType.PACKAGE, package.pk, "p", "1")

    versions.remove_package(package)

    assert PackageProperty.objects.count() == 0
    assert properties.get_properties(RefType.FILE, file.pk) == {}


def test_remove_package_leaves_the_blobs(version, blob, store):
    versions.add_file(version, blob, "a")

    versions.remove_package(version.package)

    assert PackageBlob.objects.filter(pk=blob.pk).exists()
    assert store.exists(blob.storage_key)


# Properties


def test_set_property_attaches_a_value(package):
    properties.set_property(RefType.PACKAGE, package.pk, "description", "A web server")

    assert properties.get_properties(RefType.PACKAGE, package.pk) == {"description": "A web server"}


def test_set_property_replaces_every_earlier_value_of_the_name(package):
    properties.add_properties(RefType.PACKAGE, package.pk, {"label": "one"})
    properties.add_properties(RefType.PACKAGE, package.pk, {"label": "two"})

    properties.set_property(RefType.PACKAGE, package.pk, "label", "three")

    rows = PackageProperty.objects.filter(ref_type=RefType.PACKAGE, ref_id=package.pk)
    assert list(rows.values_list("name", "value")) == [("label", "three")]


def test_set_property_leaves_other_names_alone(package):
    properties.set_property(RefType.PACKAGE, package.pk, "a", "1")

    properties.set_property(RefType.PACKAGE, package.pk, "b", "2")

    assert properties.get_properties(RefType.PACKAGE, package.pk) == {"a": "1", "b": "2"}


def test_set_property_stores_values_as_text(package):
    row = properties.set_property(RefType.PACKAGE, package.pk, "size", 42)

    row.refresh_from_db()
    assert row.value == "42"


def test_add_properties_attaches_several_values(version):
    properties.add_properties(RefType.VERSION, version.pk, {"os": "linux", "arch": "amd64"})

    assert properties.get_properties(RefType.VERSION, version.pk) == {
        "os": "linux",
        "arch": "amd64",
    }


def test_properties_are_kept_apart_by_ref_type_and_id(package, version):
    properties.set_property(RefType.PACKAGE, package.pk, "x", "package")
    properties.set_property(RefType.VERSION, version.pk, "x", "version")
    properties.set_property(RefType.VERSION, version.pk + 1, "x", "another version")

    assert properties.get_properties(RefType.PACKAGE, package.pk) == {"x": "package"}
    assert properties.get_properties(RefType.VERSION, version.pk) == {"x": "version"}


def test_get_properties_of_an_object_without_any_is_empty(package):
    assert properties.get_properties(RefType.PACKAGE, package.pk) == {}


def test_get_properties_takes_the_last_value_when_a_name_repeats(package):
    properties.add_properties(RefType.PACKAGE, package.pk, {"label": "first"})
    properties.add_properties(RefType.PACKAGE, package.pk, {"label": "last"})

    assert properties.get_properties(RefType.PACKAGE, package.pk) == {"label": "last"}


def test_delete_properties_removes_those_of_the_given_objects(version):
    other = versions.create_version(version.package, "2.0")
    properties.add_properties(RefType.VERSION, version.pk, {"a": "1", "b": "2"})
    properties.add_properties(RefType.VERSION, other.pk, {"a": "1"})

    deleted = properties.delete_properties(RefType.VERSION, [version.pk])

    assert deleted == 2
    assert properties.get_properties(RefType.VERSION, version.pk) == {}
    assert properties.get_properties(RefType.VERSION, other.pk) == {"a": "1"}


def test_delete_properties_keeps_other_ref_types_with_the_same_id(package):
    properties.set_property(RefType.PACKAGE, package.pk, "a", "1")
    properties.set_property(RefType.VERSION, package.pk, "a", "1")

    properties.delete_properties(RefType.VERSION, [package.pk])

    assert properties.get_properties(RefType.PACKAGE, package.pk) == {"a": "1"}
