"""Migrations that fill new columns from existing rows do it right."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from packages_core import sealed

BEFORE = [("packages_core", "0003_upload_hash_state")]
AFTER = [("packages_core", "0005_file_package")]


def _migrated_back(targets):
    """An executor with the database at `targets`, for a test; the latest again after."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    yield executor
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.fixture
def migrator(transactional_db):
    yield from _migrated_back(BEFORE)


def test_last_pushed_and_file_packages_are_filled_from_existing_rows(migrator):
    old = migrator.loader.project_state(BEFORE).apps
    Owner = old.get_model("packages_core", "Owner")
    Package = old.get_model("packages_core", "Package")
    Version = old.get_model("packages_core", "PackageVersion")
    Blob = old.get_model("packages_core", "PackageBlob")
    File = old.get_model("packages_core", "PackageFile")
    owner = Owner.objects.create(name="acme", kind="org")
    image = Package.objects.create(owner=owner, type="container", name="app")
    empty = Package.objects.create(owner=owner, type="container", name="empty")
    blob = Blob.objects.create(size=1, sha256="a" * 64)
    tag = Version.objects.create(package=image, version="1.0")
    newer = Version.objects.create(package=image, version="2.0")
    Version.objects.create(package=empty, version="~staging", is_internal=True)
    file = File.objects.create(version=tag, blob=blob, name="layer")

    migrator.loader.build_graph()
    migrator.migrate(AFTER)
    new = migrator.loader.project_state(AFTER).apps

    Package = new.get_model("packages_core", "Package")
    assert Package.objects.get(pk=image.pk).last_pushed == (
        new.get_model("packages_core", "PackageVersion").objects.get(pk=newer.pk).updated
    )
    assert Package.objects.get(pk=empty.pk).last_pushed is None  # staging is not a push
    assert new.get_model("packages_core", "PackageFile").objects.get(pk=file.pk).package_id == (
        image.pk
    )


INDEX_BEFORE = [
    ("packages_core", "0007_upload_package_name"),
    ("registry", "0002_manifest_package_index_covered"),
]
INDEX_AFTER = [("packages_core", "0007_upload_package_name"), ("registry", "0003_indexchild")]


@pytest.fixture
def index_migrator(transactional_db):
    yield from _migrated_back(INDEX_BEFORE)


def test_index_children_are_filled_from_the_indexes_metadata(index_migrator):
    old = index_migrator.loader.project_state(INDEX_BEFORE).apps
    Owner = old.get_model("packages_core", "Owner")
    Package = old.get_model("packages_core", "Package")
    Version = old.get_model("packages_core", "PackageVersion")
    Blob = old.get_model("packages_core", "PackageBlob")
    File = old.get_model("packages_core", "PackageFile")
    Manifest = old.get_model("registry", "Manifest")
    image = Package.objects.create(
        owner=Owner.objects.create(name="acme", kind="org"), type="container", name="app"
    )
    Blob.objects.create(size=1, sha256="b" * 64, sha512="c" * 128)
    listed = [{"digest": f"sha256:{'a' * 64}"}, {"digest": f"sha512:{'c' * 128}"}, {"x": 1}]
    index = Version.objects.create(package=image, version="1.0", metadata={"manifests": listed})
    lead = File.objects.create(
        version=index, package=image, blob=Blob.objects.create(size=2, sha256="d" * 64), name="m"
    )
    row = Manifest.objects.create(
        file=lead,
        package=image,
        digest=f"sha256:{'d' * 64}",
        media_type="application/vnd.oci.image.index.v1+json",
    )

    index_migrator.loader.build_graph()
    index_migrator.migrate(INDEX_AFTER)
    new = index_migrator.loader.project_state(INDEX_AFTER).apps

    children = new.get_model("registry", "IndexChild").objects.filter(index_id=row.pk)
    assert sorted(children.values_list("digest", flat=True)) == [
        f"sha256:{'a' * 64}",
        f"sha256:{'b' * 64}",
    ]


SEAL_BEFORE = [("packages_core", "0009_version_last_pulled_cleanup_unpulled")]
SEAL_AFTER = [("packages_core", "0010_webhook_secret_sealed")]


@pytest.fixture
def seal_migrator(transactional_db):
    yield from _migrated_back(SEAL_BEFORE)


def test_webhook_secrets_are_sealed_and_open_again_backwards(seal_migrator):
    old = seal_migrator.loader.project_state(SEAL_BEFORE).apps
    Webhook = old.get_model("packages_core", "Webhook")
    signed = Webhook.objects.create(url="https://ci.example.com/hook", secret="s3cret")
    unsigned = Webhook.objects.create(url="https://ci.example.com/other", secret="")

    seal_migrator.loader.build_graph()
    seal_migrator.migrate(SEAL_AFTER)
    new = seal_migrator.loader.project_state(SEAL_AFTER).apps.get_model("packages_core", "Webhook")

    kept = new.objects.get(pk=signed.pk).sealed_secret
    assert "s3cret" not in kept
    assert sealed.unseal(kept) == "s3cret"
    assert new.objects.get(pk=unsigned.pk).sealed_secret == ""
    seal_migrator.loader.build_graph()
    seal_migrator.migrate(SEAL_BEFORE)
    back = seal_migrator.loader.project_state(SEAL_BEFORE).apps.get_model(
        "packages_core", "Webhook"
    )
    assert back.objects.get(pk=signed.pk).secret == "s3cret"
