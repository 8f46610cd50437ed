"""The figures a package keeps (published versions, bytes of distinct blobs) stay equal
to what its rows say, through every way versions and files come and go.
"""

from __future__ import annotations

import io
import threading
import time

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from registry_helpers import ALICE, image_config, push_blob, push_image, send

from packages_core.models import CleanupRule, Package, PackageFile, PackageVersion
from packages_core.services import figures, versions
from packages_core.services.blobs import store_blob
from packages_core.services.cleanup import run_cleanup
from tests.conftest import on_postgresql

pytestmark = pytest.mark.django_db

SHARED = b"a layer every tag shares" * 10
OWN = b"a layer of its own"


def image(name: str = "app") -> Package:
    return Package.objects.get(owner__name="alice", name=name)


def kept(package: Package) -> tuple[int, int]:
    package.refresh_from_db()
    return package.version_count, package.size


def assert_kept_right(name: str = "app") -> tuple[int, int]:
    package = image(name)
    assert kept(package) == figures.counted(package.pk)
    return kept(package)


def push(client, tag: str, *layers: bytes, name: str = "app", arch: str = "amd64"):
    return push_image(
        client, f"alice/{name}", tag, layers=layers, config=image_config(architecture=arch)
    )


def test_pushes_count_each_blob_once(client, alice):
    first = push(client, "1.0", SHARED, OWN)
    count, size = assert_kept_right()
    assert count == 1
    assert size == len(SHARED) + len(OWN) + len(first.manifest) + len(image_config())

    second = push(client, "2.0", SHARED, name="app", arch="arm64")

    count, size_after = assert_kept_right()
    assert count == 2
    # The shared layer is counted once; the new manifest and config add their bytes.
    assert size_after == size + len(second.manifest) + len(image_config(architecture="arm64"))


def test_staged_blobs_count_for_nothing(client, alice):
    push(client, "1.0", SHARED)
    before = assert_kept_right()

    push_blob(client, "alice/app", b"uploaded, no manifest yet")

    assert assert_kept_right() == before


def test_a_moved_tag_keeps_its_old_manifest_as_an_untagged_version(client, alice):
    push(client, "latest", SHARED)
    push(client, "latest", SHARED, OWN, arch="arm64")

    count, _ = assert_kept_right()
    assert count == 2  # latest, and the old manifest by digest


def test_deleting_tags_and_manifests_takes_their_blobs_off(client, alice):
    kept_image = push(client, "1.0", SHARED)
    gone = push(client, "2.0", SHARED, OWN, arch="arm64")

    response = send(client, "DELETE", f"/v2/alice/app/manifests/{gone.digest}", auth=ALICE)
    assert response.status_code == 202

    count, size = assert_kept_right()
    assert count == 1
    assert size == len(SHARED) + len(kept_image.manifest) + len(image_config())


def test_files_added_and_removed_through_the_services(alice, store):
    package = versions.get_or_create_package(alice.package_owner, "generic", "tool")
    release, _ = versions.get_or_create_version(package, "1.0")
    blob = store_blob(io.BytesIO(b"x" * 100), store=store).blob
    versions.add_file(release, blob, "tool.tar")
    versions.add_file(release, blob, "copy.tar")  # the same blob twice: counted once
    assert kept(package) == (1, 100) == figures.counted(package.pk)

    versions.remove_files([release.files.get(name="copy.tar")])
    assert kept(package) == (1, 100)

    versions.remove_files([release.files.get(name="tool.tar")])
    assert kept(package) == (1, 0)

    versions.remove_version(release)
    assert kept(package) == (0, 0) == figures.counted(package.pk)


def test_cleanup_keeps_the_figures_right(client, alice):
    for n in range(4):
        push(client, f"{n}.0", SHARED, f"layer {n}".encode(), arch=f"arch{n}")

    CleanupRule.objects.create(owner=alice.package_owner, type="container", keep_count=1)

    run_cleanup()

    count, _ = assert_kept_right()
    assert count == 1


def test_recount_puts_figures_written_behind_the_services_back_right(client, alice, capsys):
    push(client, "1.0", SHARED)
    right = assert_kept_right()
    Package.objects.filter(pk=image().pk).update(version_count=99, size=-5)
    PackageVersion.objects.filter(package=image(), is_internal=True).delete()

    call_command("recount_packages")

    assert kept(image()) == right
    assert "1 package(s)" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_a_removal_takes_the_package_lock_before_touching_any_row(alice, store):
    """A push holding the image's lock may wait for the rows a removal deletes; were the
    removal to delete first and lock the package after, the two would deadlock.
    """
    if not on_postgresql():
        pytest.skip("row locks are PostgreSQL's; SQLite serialises writers")
    package = versions.get_or_create_package(alice.package_owner, "generic", "tool")
    release, _ = versions.get_or_create_version(package, "1.0")
    versions.add_file(release, store_blob(io.BytesIO(b"tool"), store=store).blob, "tool.tar")
    holding, done = threading.Event(), threading.Event()

    def push() -> None:
        with transaction.atomic():
            versions.lock_package(alice.package_owner, "generic", "tool")
            holding.set()
            done.wait(10)
        connection.close()

    def remove() -> None:
        versions.remove_version(PackageVersion.objects.get(pk=release.pk))
        connection.close()

    pusher = threading.Thread(target=push)
    pusher.start()
    assert holding.wait(10)
    remover = threading.Thread(target=remove)
    remover.start()
    time.sleep(0.5)  # the removal is under way, waiting for the package
    try:
        with transaction.atomic():
            # NOWAIT fails if the removal already holds the file's row.
            locked = PackageFile.objects.select_for_update(nowait=True).filter(version=release)
            assert len(locked) == 1
    finally:
        done.set()
        pusher.join(10)
        remover.join(10)
    assert not PackageVersion.objects.filter(pk=release.pk).exists()
    assert kept(package) == (0, 0)
