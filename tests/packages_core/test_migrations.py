"""Migrations that fill new columns from existing rows do it right."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("packages_core", "0003_upload_hash_state")]
AFTER = [("packages_core", "0005_file_package")]


@pytest.fixture
def migrator(transactional_db):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    yield executor
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


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
