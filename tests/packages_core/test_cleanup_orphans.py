"""Cleanup reconciles storage with the database: what killed processes left goes.

Drafts of monolithic pushes, blobs written under their address whose row never
committed, staged bytes and lock files of sessions whose row is gone, and (on S3)
multipart uploads never completed: removed once older than the grace period, on local
disk and on S3 (moto's server on loopback), while whatever a row or a live writer
still has stays.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import on_postgresql
from django.core.files.storage import InMemoryStorage
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from packages_core.content_store import ContentStore
from packages_core.hashing import Digests
from packages_core.models import BlobDeletion, BlobUpload, PackageBlob
from packages_core.models.blobs import blob_key
from packages_core.s3 import S3Objects
from packages_core.services import reconcile, uploads
from packages_core.services.blobs import register_blob, store_blob
from packages_core.services.cleanup import CleanupReport, run_cleanup
from packages_core.services.reconcile import reconcile_storage

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)
OLD = timedelta(days=2)  # past the default grace period of a day
MIB = 1024 * 1024


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put(root: Path, key: str, data: bytes = b"litter", *, age: timedelta = OLD) -> Path:
    """A file in the local store, last written `age` ago."""
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    backdate(path, age)
    return path


def backdate(path: Path, age: timedelta) -> None:
    stamp = (timezone.now() - age).timestamp()
    os.utime(path, (stamp, stamp))


def files(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()}


def draft_key(key: str) -> str:
    """Where ContentStore.begin writes the bytes for `key` on disk before the rename."""
    return f"{key}.{uuid.uuid4().hex}.part"


def session_with_bytes(owner, data: bytes, store: ContentStore) -> BlobUpload:
    upload = uploads.start_upload(owner, "app")
    return uploads.append_to_upload(upload, io.BytesIO(data), store=store)


def sweep(*, cutoff, dry_run: bool = False, progress=None, store=None) -> CleanupReport:
    """Only the walk through storage, with its cutoff given."""
    report = CleanupReport()
    reconcile_storage(
        report,
        cutoff=cutoff,
        dry_run=dry_run,
        progress=progress or (lambda step, done, total: None),
        store=store,
    )
    return report


# Local disk: blob files


def test_a_blob_file_no_row_names_goes_once_past_the_grace_period(package_storage):
    old = put(package_storage, blob_key(sha256(b"old orphan")), b"old orphan")
    young = put(package_storage, blob_key(sha256(b"young")), b"young", age=HOUR)

    report = run_cleanup()

    assert report == CleanupReport(orphan_blobs=1, bytes_freed=len(b"old orphan"))
    assert not old.exists()
    assert young.exists(), "a push may be about to commit its row"


def test_a_blob_file_its_row_names_stays_however_old(blob, store):
    backdate(Path(store.local_path(blob.storage_key)), OLD)

    assert run_cleanup() == CleanupReport()
    assert store.exists(blob.storage_key)


def test_a_blob_file_whose_deletion_is_pending_is_left_to_garbage_collection(
    package_storage, django_capture_on_commit_callbacks
):
    data = b"dropped by a run that stopped"
    path = put(package_storage, blob_key(sha256(data)), data)
    BlobDeletion.objects.create(sha256=sha256(data))

    with django_capture_on_commit_callbacks(execute=True):
        report = run_cleanup()

    assert report == CleanupReport(), "not counted twice: its own step deletes it"
    assert not path.exists()
    assert not BlobDeletion.objects.exists()


def test_files_under_the_blob_prefix_that_are_no_blob_key_stay(package_storage):
    odd = [
        put(package_storage, f"blobs/sha256/00/{sha256(b'x')}"),  # not under its own folder
        put(package_storage, "blobs/README"),
    ]

    assert run_cleanup() == CleanupReport()
    assert all(path.exists() for path in odd)


# Local disk: drafts and staged bytes


def test_drafts_and_staged_bytes_of_killed_pushes_go_and_young_ones_stay(package_storage):
    litter = [
        put(package_storage, draft_key(blob_key(sha256(b"monolithic"))), b"x" * 100),
        put(package_storage, draft_key(f"uploads/{uuid.uuid4().hex}"), b"y" * 20),
        put(package_storage, f"uploads/{uuid.uuid4().hex}", b"z" * 3),
    ]
    young = put(package_storage, draft_key(blob_key(sha256(b"in flight"))), b"w", age=HOUR)

    report = run_cleanup()

    assert report == CleanupReport(orphan_uploads=3, bytes_freed=123)
    assert [path for path in litter if path.exists()] == []
    assert young.exists()


class Trickle:
    """A request body that sends its first piece, then waits until told to go on."""

    def __init__(self, first: bytes, rest: bytes):
        self.pieces = [first, rest]
        self.sent_first = threading.Event()
        self.go_on = threading.Event()

    def read(self, size: int = -1) -> bytes:
        if not self.pieces:
            return b""
        if len(self.pieces) == 1:
            self.sent_first.set()
            assert self.go_on.wait(10)
        return self.pieces.pop(0)


def test_a_draft_its_writer_still_holds_stays_whatever_its_age(store, package_storage):
    data = os.urandom(3 * MIB)
    key = blob_key(sha256(data))
    body = Trickle(data[:MIB], data[MIB:])
    written = {}
    writer = threading.Thread(target=lambda: written.update(pending=store.begin(key, body)))
    writer.start()
    try:
        assert body.sent_first.wait(10)
        (draft,) = package_storage.rglob("*.part")
        backdate(draft, OLD)

        report = run_cleanup(grace=timedelta(0))

        assert report == CleanupReport(), "its writer holds its lock"
        assert draft.exists()
    finally:
        body.go_on.set()
        writer.join(10)
    written["pending"].commit()
    written["pending"].abort()
    assert (package_storage / key).read_bytes() == data
    assert list(package_storage.rglob("*.part")) == []


def test_an_empty_draft_a_moment_old_may_be_about_to_be_locked_and_stays(package_storage):
    draft = put(package_storage, draft_key(blob_key(sha256(b"next"))), b"", age=timedelta(0))

    assert run_cleanup(grace=timedelta(0)) == CleanupReport()
    assert draft.exists()


def test_a_draft_whose_writer_died_goes_even_though_it_was_locked(store, package_storage):
    # What a kill -9 leaves: the draft of a writer whose lock the kernel dropped.
    pending = store.begin(blob_key(sha256(b"never finished")), io.BytesIO(b"half of it"))
    pending.handle.close()
    (draft,) = package_storage.rglob("*.part")
    backdate(draft, OLD)

    assert run_cleanup() == CleanupReport(orphan_uploads=1, bytes_freed=len(b"half of it"))
    assert not draft.exists()


# Local disk: sessions


def test_an_ended_sessions_staged_bytes_and_lock_file_go(alice, store, package_storage):
    upload = session_with_bytes(alice.package_owner, b"0123456789", store)
    staged = Path(store.local_path(upload.storage_key))
    lock = Path(f"{staged}.lock")
    assert staged.exists()
    assert lock.exists()
    # Killed between the commit that ended the session and deleting its files.
    BlobUpload.objects.filter(pk=upload.pk).delete()
    backdate(staged, OLD)
    backdate(lock, OLD)

    report = run_cleanup()

    assert report == CleanupReport(orphan_uploads=1, orphan_locks=1, bytes_freed=10)
    assert not staged.exists()
    assert not lock.exists()


def test_a_live_sessions_files_stay_whatever_their_age(alice, store, package_storage):
    upload = session_with_bytes(alice.package_owner, b"0123456789", store)
    staged = Path(store.local_path(upload.storage_key))
    for path in (staged, Path(f"{staged}.lock")):
        backdate(path, OLD)

    assert run_cleanup() == CleanupReport()
    assert files(package_storage) == {upload.storage_key, f"{upload.storage_key}.lock"}
    assert BlobUpload.objects.filter(pk=upload.pk).exists()


# Local disk: the dry run, the summary, paging


@pytest.fixture
def litter(alice, store, package_storage):
    """One of each kind of orphan, past the grace period, among things that stay; the
    keys of the orphans.
    """
    orphans = {
        put(package_storage, blob_key(sha256(b"orphan")), b"orphan"),
        put(package_storage, draft_key(blob_key(sha256(b"killed"))), b"killed push"),
    }
    ended = session_with_bytes(alice.package_owner, b"ended", store)
    BlobUpload.objects.filter(pk=ended.pk).delete()
    orphans |= {
        Path(store.local_path(ended.storage_key)),
        Path(f"{store.local_path(ended.storage_key)}.lock"),
    }
    live = session_with_bytes(alice.package_owner, b"live", store)
    kept = store_blob(io.BytesIO(b"has a row"), store=store).blob
    for path in package_storage.rglob("*"):
        if path.is_file():
            backdate(path, OLD)
    return {
        "orphans": {path.relative_to(package_storage).as_posix() for path in orphans},
        "kept": {live.storage_key, f"{live.storage_key}.lock", kept.storage_key},
    }


def test_a_dry_run_reports_exactly_what_the_run_removes_and_removes_nothing(
    litter, package_storage, django_capture_on_commit_callbacks
):
    before = files(package_storage)
    assert before == litter["orphans"] | litter["kept"]

    dry = run_cleanup(dry_run=True)

    assert files(package_storage) == before
    with django_capture_on_commit_callbacks(execute=True):
        done = run_cleanup()
    assert (
        dry
        == done
        == CleanupReport(
            orphan_blobs=1,
            orphan_uploads=2,
            orphan_locks=1,
            bytes_freed=len(b"orphan") + len(b"killed push") + len(b"ended"),
        )
    )
    assert files(package_storage) == litter["kept"]


def test_the_command_counts_orphans_in_its_summary(litter, django_capture_on_commit_callbacks):
    out = io.StringIO()
    call_command("cleanup_packages", "--dry-run", stdout=out)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("cleanup_packages", stdout=out)
        call_command("cleanup_packages", stdout=out)

    dry, done, again = out.getvalue().splitlines()
    orphans = "1 blob object, 2 upload files, 1 lock file, 0 multipart uploads"
    assert dry == (
        "Dry run: 0 versions would be removed, 0 blobs would be removed, 22 bytes would be "
        f"freed (0 idle uploads, 0 staged files, 0 empty packages; orphaned in storage: "
        f"{orphans})."
    )
    assert done == (
        "0 versions removed, 0 blobs removed, 22 bytes freed (0 idle uploads, 0 staged "
        f"files, 0 empty packages; orphaned in storage: {orphans})."
    )
    assert again.endswith(
        "orphaned in storage: 0 blob objects, 0 upload files, 0 lock files, 0 multipart uploads)."
    )


def test_storage_is_read_a_page_at_a_time_with_one_query_per_page(
    alice, store, package_storage, monkeypatch
):
    monkeypatch.setattr(reconcile, "PAGE_SIZE", 2)
    orphans = [put(package_storage, blob_key(sha256(b"%d" % n)), b"%d" % n) for n in range(5)]
    kept = store_blob(io.BytesIO(b"has a row"), store=store).blob
    backdate(Path(store.local_path(kept.storage_key)), OLD)
    sessions = [session_with_bytes(alice.package_owner, b"s%d" % n, store) for n in range(2)]
    BlobUpload.objects.filter(pk=sessions[0].pk).delete()
    for path in (package_storage / "uploads").iterdir():
        backdate(path, OLD)
    steps = []

    with CaptureQueriesContext(connection) as queries:
        report = sweep(cutoff=timezone.now() - HOUR, progress=lambda *step: steps.append(step))

    # Four upload files (two sessions' bytes and locks) in two pages, then six blobs in three.
    assert steps == [("storage", n, None) for n in (2, 4, 6, 8, 10)]
    selects = [query["sql"] for query in queries if query["sql"].lstrip("(").startswith("SELECT")]
    assert len([sql for sql in selects if "blobupload" in sql]) == 2
    assert len([sql for sql in selects if "UNION" in sql]) == 3
    assert len(selects) == 5
    assert (report.orphan_blobs, report.orphan_uploads, report.orphan_locks) == (5, 1, 1)
    assert not any(path.exists() for path in orphans)
    assert store.exists(kept.storage_key)
    assert store.exists(sessions[1].storage_key)


# Local disk: a push adopting an old orphan


def test_an_orphan_a_push_adopts_before_the_claim_stays(package_storage, store, monkeypatch):
    data = b"pushed again as cleanup looked"
    path = put(package_storage, blob_key(sha256(data)), data)
    claim = reconcile._claim

    def push_commits_first(sha256_hex):
        # Between the page's query and the claim, a push of the same bytes commits its
        # row, having found the object in place (so it did not write it again).
        register_blob(Digests(len(data), sha256_hex), place=pytest.fail, store=store)
        return claim(sha256_hex)

    monkeypatch.setattr(reconcile, "_claim", push_commits_first)

    assert run_cleanup() == CleanupReport()
    assert path.read_bytes() == data


def test_a_claimed_orphan_leaves_no_row_behind(package_storage):
    put(package_storage, blob_key(sha256(b"orphan")), b"orphan")

    assert run_cleanup().orphan_blobs == 1
    assert not PackageBlob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_claim_waits_for_a_push_adopting_the_orphan_and_then_leaves_it(
    alice, store, package_storage
):
    if not on_postgresql():
        pytest.skip("two connections at once: PostgreSQL (SQLite's test database is shared)")
    data = b"an old orphan, pushed again"
    path = put(package_storage, blob_key(sha256(data)), data)
    adopting, go_on = threading.Event(), threading.Event()
    results = {}

    def push():
        def hold(blob):
            adopting.set()
            assert go_on.wait(10)

        try:
            register_blob(Digests(len(data), sha256(data)), pytest.fail, store=store, claim=hold)
        finally:
            connection.close()

    def clean():
        try:
            results["report"] = sweep(cutoff=timezone.now() - HOUR)
        finally:
            connection.close()

    pusher = threading.Thread(target=push)
    pusher.start()
    assert adopting.wait(10)
    cleaner = threading.Thread(target=clean)
    cleaner.start()
    time.sleep(0.5)
    assert cleaner.is_alive(), "the claim waits for the push's row"
    go_on.set()
    pusher.join(10)
    cleaner.join(10)

    assert results["report"] == CleanupReport()
    assert path.read_bytes() == data
    assert PackageBlob.objects.filter(sha256=sha256(data)).exists()


# Other storages: through the Storage API


class RemoteStore(ContentStore):
    """A store with no local paths and no S3: only the Storage API to walk it by."""

    def local_path(self, key):
        return None


def test_a_storage_that_is_neither_disk_nor_s3_is_walked_through_the_storage_api(db):
    store = RemoteStore(InMemoryStorage())
    store.storage.save(blob_key(sha256(b"orphan")), io.BytesIO(b"orphan"))
    kept = PackageBlob.objects.create(sha256=sha256(b"has a row"), size=9)
    store.storage.save(kept.storage_key, io.BytesIO(b"has a row"))
    store.storage.save("uploads/" + uuid.uuid4().hex, io.BytesIO(b"staged"))

    assert sweep(cutoff=timezone.now() - HOUR, store=store) == CleanupReport()
    report = sweep(cutoff=timezone.now() + HOUR, store=store)

    assert report == CleanupReport(orphan_blobs=1, orphan_uploads=1, bytes_freed=12)
    assert store.storage.listdir("uploads") == ([], [])
    assert not store.exists(blob_key(sha256(b"orphan")))
    assert store.exists(kept.storage_key)


# S3


def put_object(bucket, key: str, data: bytes = b"litter") -> None:
    bucket.client.put_object(Bucket=bucket.name, Key=key, Body=data)


def open_multipart(bucket) -> list[dict]:
    return bucket.client.list_multipart_uploads(Bucket=bucket.name).get("Uploads", [])


def past_everything():
    """A cutoff that what was just written is older than (S3 stamps to the second)."""
    return timezone.now() + timedelta(seconds=2)


def test_on_s3_orphans_go_and_what_rows_name_stays(s3_storage, alice):
    store = ContentStore.default()
    kept = store_blob(io.BytesIO(b"has a row"), store=store).blob
    live = uploads.start_upload(alice.package_owner, "app")
    ended = uuid.uuid4().hex
    orphans = {
        blob_key(sha256(b"orphan")): b"orphan",
        f"uploads/{uuid.uuid4().hex}": b"staged",
        f"uploads/session-{ended}.pieces/{0:016d}-abcd1234": b"a piece",
    }
    for key, data in orphans.items():
        put_object(s3_storage, key, data)
    live_piece = f"{live.storage_key}.pieces/{0:016d}-abcd1234"
    put_object(s3_storage, live_piece, b"a live piece")

    young = sweep(cutoff=timezone.now() - HOUR)
    assert young == CleanupReport()

    report = sweep(cutoff=past_everything())

    assert report == CleanupReport(
        orphan_blobs=1, orphan_uploads=2, bytes_freed=sum(map(len, orphans.values()))
    )
    assert s3_storage.list_keys() == sorted([kept.storage_key, live_piece])
    assert not PackageBlob.objects.filter(sha256=sha256(b"orphan")).exists()


def test_on_s3_a_killed_monolithic_pushs_multipart_upload_is_aborted(s3_storage, alice):
    store = ContentStore.default()
    data = os.urandom(9 * MIB)
    # What a kill leaves: parts sent, neither completed nor aborted.
    S3Objects(store.storage).begin(blob_key(sha256(data)), io.BytesIO(data))
    live = uploads.start_upload(alice.package_owner, "app")
    s3_storage.client.create_multipart_upload(
        Bucket=s3_storage.name, Key=f"{live.storage_key}.pieces/{0:016d}-abcd1234"
    )
    (initiated,) = {upload["Initiated"] for upload in open_multipart(s3_storage)}

    assert sweep(cutoff=initiated - HOUR) == CleanupReport(), "younger than the grace"
    dry = sweep(cutoff=past_everything(), dry_run=True)
    assert len(open_multipart(s3_storage)) == 2
    done = sweep(cutoff=past_everything())

    assert dry == done == CleanupReport(orphan_multipart=1, bytes_freed=len(data))
    assert [upload["Key"] for upload in open_multipart(s3_storage)] == [
        f"{live.storage_key}.pieces/{0:016d}-abcd1234"
    ]
    assert s3_storage.list_keys() == []


def test_on_s3_listing_follows_continuation_tokens(s3_storage, monkeypatch):
    monkeypatch.setattr(reconcile, "PAGE_SIZE", 2)
    for n in range(5):
        put_object(s3_storage, blob_key(sha256(b"%d" % n)), b"%d" % n)
    steps = []

    report = sweep(cutoff=past_everything(), progress=lambda *step: steps.append(step))

    assert steps == [("storage", 2, None), ("storage", 4, None), ("storage", 5, None)]
    assert report.orphan_blobs == 5
    assert s3_storage.list_keys() == []


def test_on_s3_multipart_listing_follows_its_markers(s3_storage, monkeypatch):
    class Client:
        calls = []

        def list_multipart_uploads(self, **arguments):
            self.calls.append(arguments)
            if "KeyMarker" not in arguments:
                return {
                    "Uploads": [{"Key": "blobs/a", "UploadId": "1", "Initiated": 1}],
                    "IsTruncated": True,
                    "NextKeyMarker": "blobs/a",
                    "NextUploadIdMarker": "1",
                }
            return {"Uploads": [{"Key": "blobs/b", "UploadId": "2", "Initiated": 2}]}

    monkeypatch.setattr(S3Objects, "client", property(lambda self: Client()))
    objects = S3Objects(ContentStore.default().storage)

    pages = list(objects.list_multipart("blobs", 1))

    assert pages == [[("blobs/a", "1", 1)], [("blobs/b", "2", 2)]]
    assert Client.calls[1]["KeyMarker"] == "blobs/a"
    assert Client.calls[1]["UploadIdMarker"] == "1"
    assert {call["Prefix"] for call in Client.calls} == {"blobs/"}


def test_on_s3_only_our_key_prefix_is_walked(s3_storage):
    s3_storage.configure(FORGE_S3_PREFIX="site-a")
    ours = f"site-a/{blob_key(sha256(b'ours'))}"
    theirs = f"site-b/{blob_key(sha256(b'theirs'))}"
    put_object(s3_storage, ours)
    put_object(s3_storage, theirs)
    s3_storage.client.create_multipart_upload(Bucket=s3_storage.name, Key=theirs)

    report = sweep(cutoff=past_everything())

    assert (report.orphan_blobs, report.orphan_multipart) == (1, 0)
    assert s3_storage.list_keys() == [theirs]
    assert len(open_multipart(s3_storage)) == 1
