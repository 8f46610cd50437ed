"""Local blob files are on disk before their rows commit, and no upload pads lost bytes."""

from __future__ import annotations

import io
import os

import pytest

from packages_core import durability
from packages_core.models import BlobUpload, PackageBlob
from packages_core.services import uploads
from packages_core.services.blobs import store_blob

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def sync_writes(settings):
    """On, as the forge site has it: the test settings turn it off for speed."""
    settings.PACKAGES = {**settings.PACKAGES, "SYNC_WRITES": True}


@pytest.fixture
def synced(monkeypatch):
    """What was fsynced, in order: ("file", path) or ("directory", path)."""
    calls = []
    real_fsync = os.fsync

    def fsync(fd):
        path = os.readlink(f"/proc/self/fd/{fd}")
        calls.append(("directory" if os.path.isdir(path) else "file", path))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


@pytest.fixture
def written_out(monkeypatch):
    """The (offset, length) ranges handed to start_writeback."""
    ranges = []
    monkeypatch.setattr(
        durability, "start_writeback", lambda fd, offset, length: ranges.append((offset, length))
    )
    return ranges


def test_a_stored_blob_is_synced_then_renamed_then_its_directory_synced(store, synced):
    stored = store_blob(io.BytesIO(b"durable bytes"), store=store).blob

    final = store.local_path(stored.storage_key)
    kinds = [kind for kind, _ in synced]
    assert kinds[0] == "file"
    assert synced[-1] == ("directory", os.path.dirname(final))
    assert os.path.exists(final)


def test_a_finished_upload_syncs_its_staging_file_before_the_rename(store, alice, synced):
    upload = uploads.start_upload(alice.package_owner, "img")
    uploads.append_to_upload(upload, io.BytesIO(b"x" * 5000))
    staging = store.local_path(upload.storage_key)
    synced.clear()

    stored = uploads.complete_upload(BlobUpload.objects.get(pk=upload.pk))

    assert synced[0] == ("file", staging)
    assert synced[-1] == ("directory", os.path.dirname(store.local_path(stored.blob.storage_key)))


def test_pieces_start_their_way_to_disk_as_they_are_written(store, alice, written_out):
    upload = uploads.start_upload(alice.package_owner, "img")
    uploads.append_to_upload(upload, io.BytesIO(b"a" * (3 * 1024 * 1024 + 5)))
    uploads.append_to_upload(
        BlobUpload.objects.get(pk=upload.pk), io.BytesIO(b"b" * 10), offset=3 * 1024 * 1024 + 5
    )

    mib = 1024 * 1024
    assert written_out == [(0, mib), (mib, mib), (2 * mib, mib), (3 * mib, 5), (3 * mib + 5, 10)]


def test_without_sync_writes_nothing_is_synced(store, alice, synced, written_out, settings):
    settings.PACKAGES = {**settings.PACKAGES, "SYNC_WRITES": False}

    store_blob(io.BytesIO(b"fast and loose"), store=store)
    upload = uploads.start_upload(alice.package_owner, "img")
    uploads.append_to_upload(upload, io.BytesIO(b"y" * 100))
    uploads.complete_upload(BlobUpload.objects.get(pk=upload.pk))

    assert synced == []
    assert written_out == []


def test_the_writeback_hint_works_on_this_machine(tmp_path):
    path = tmp_path / "hint"
    with open(path, "wb") as handle:
        handle.write(b"z" * 10000)
        handle.flush()
        durability.start_writeback(handle.fileno(), 0, 10000)

    assert durability._sync_file_range() is not None  # glibc on Linux has it
    assert path.read_bytes() == b"z" * 10000


def test_a_chunk_after_staged_bytes_were_lost_ends_the_upload_instead_of_padding(
    store, alice, django_capture_on_commit_callbacks
):
    upload = uploads.start_upload(alice.package_owner, "img")
    uploads.append_to_upload(upload, io.BytesIO(b"q" * 4000))
    staging = store.local_path(upload.storage_key)
    os.truncate(staging, 1000)  # acknowledged bytes a crash did not keep

    with pytest.raises(uploads.UploadGone), django_capture_on_commit_callbacks(execute=True):
        uploads.append_to_upload(
            BlobUpload.objects.get(pk=upload.pk), io.BytesIO(b"r"), offset=4000
        )

    assert not BlobUpload.objects.filter(pk=upload.pk).exists()
    assert not os.path.exists(staging)


def test_finishing_an_upload_whose_staged_bytes_were_lost_stores_nothing(store, alice):
    upload = uploads.start_upload(alice.package_owner, "img")
    uploads.append_to_upload(upload, io.BytesIO(b"q" * 4000))
    os.truncate(store.local_path(upload.storage_key), 3999)

    with pytest.raises(uploads.UploadGone):
        uploads.complete_upload(BlobUpload.objects.get(pk=upload.pk))

    assert not PackageBlob.objects.exists()
    assert not BlobUpload.objects.filter(pk=upload.pk).exists()
