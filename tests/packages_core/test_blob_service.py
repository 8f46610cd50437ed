"""Storing content-addressed blobs from streams: keys, digests, deduplication and races."""

import hashlib
import io
import threading

import pytest
from conftest import on_postgresql
from django.db import connection

from packages_core.models import Owner, Package, PackageBlob
from packages_core.services import versions
from packages_core.services.blobs import store_blob

MiB = 1024 * 1024
THREADS = 8


class RecordingStream:
    """A forward-only stream (no seek) that records the size asked of every read()."""

    def __init__(self, data: bytes):
        self._buffer = io.BytesIO(data)
        self.read_sizes = []
        self.bytes_read = 0

    def read(self, size=-1):
        self.read_sizes.append(size)
        data = self._buffer.read(size)
        self.bytes_read += len(data)
        return data


class BrokenStream:
    """A stream that fails after handing out `good` bytes, like a dropped connection."""

    def __init__(self, good: int):
        self._remaining = good

    def read(self, size=-1):
        if self._remaining <= 0:
            raise OSError("connection reset by peer")
        size = self._remaining if size is None or size < 0 else min(size, self._remaining)
        self._remaining -= size
        return b"x" * size


def files_under(root, prefix=""):
    base = root / prefix
    if not base.exists():
        return []
    return sorted(path.relative_to(root).as_posix() for path in base.rglob("*") if path.is_file())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Where and what


def test_a_blob_is_stored_at_its_content_addressed_key(db, store, package_storage):
    data = b"hello, registry"
    digest = sha256(data)

    store_blob(io.BytesIO(data), store=store)

    key = f"blobs/sha256/{digest[:2]}/{digest}"
    assert files_under(package_storage, "blobs") == [key]
    assert (package_storage / key).read_bytes() == data


def test_a_stored_blob_records_its_size_and_digests(db, store):
    data = b"some layer" * 1000

    blob = store_blob(io.BytesIO(data), store=store).blob

    blob.refresh_from_db()
    assert blob.size == len(data)
    assert blob.sha256 == hashlib.sha256(data).hexdigest()
    assert blob.sha512 is None  # computed only when a client names the blob by it


def test_a_blob_stored_with_sha512_asked_for_records_it(db, store):
    data = b"some layer" * 1000

    blob = store_blob(io.BytesIO(data), store=store, sha512=True).blob

    blob.refresh_from_db()
    assert blob.sha512 == hashlib.sha512(data).hexdigest()


def test_a_blob_stored_again_by_its_sha512_gains_it_without_a_second_object(
    db, store, package_storage
):
    data = b"first by sha256, then by sha512"
    first = store_blob(io.BytesIO(data), store=store).blob

    second = store_blob(io.BytesIO(data), store=store, sha512=True)

    assert second.created is False
    assert second.blob.pk == first.pk
    first.refresh_from_db()
    assert first.sha512 == hashlib.sha512(data).hexdigest()
    assert files_under(package_storage, "blobs") == [first.storage_key]


def test_the_storage_key_of_a_stored_blob_opens_its_bytes(db, store):
    data = b"round trip"

    blob = store_blob(io.BytesIO(data), store=store).blob

    with store.open(blob.storage_key) as handle:
        assert handle.read() == data


def test_storing_new_bytes_reports_a_created_blob(db, store):
    stored = store_blob(io.BytesIO(b"new"), store=store)

    assert stored.created is True
    assert PackageBlob.objects.count() == 1


def test_store_blob_uses_the_configured_storage_by_default(db, package_storage):
    digest = sha256(b"default store")

    store_blob(io.BytesIO(b"default store"))

    assert (package_storage / f"blobs/sha256/{digest[:2]}/{digest}").is_file()


def test_different_bytes_make_different_blobs(db, store, package_storage):
    first = store_blob(io.BytesIO(b"one"), store=store).blob
    second = store_blob(io.BytesIO(b"two"), store=store).blob

    assert first.pk != second.pk
    assert len(files_under(package_storage, "blobs")) == 2


# Storing the same bytes again


def test_storing_the_same_bytes_twice_keeps_one_row(db, store):
    first = store_blob(io.BytesIO(b"same"), store=store)
    second = store_blob(io.BytesIO(b"same"), store=store)

    assert second.created is False
    assert second.blob.pk == first.blob.pk
    assert PackageBlob.objects.count() == 1


def test_storing_the_same_bytes_twice_keeps_one_object(db, store, package_storage):
    store_blob(io.BytesIO(b"same"), store=store)
    store_blob(io.BytesIO(b"same"), store=store)

    assert len(files_under(package_storage, "blobs")) == 1


def test_storing_leaves_no_staging_leftovers(db, store, package_storage):
    store_blob(io.BytesIO(b"same"), store=store)
    store_blob(io.BytesIO(b"same"), store=store)

    assert files_under(package_storage, "uploads") == []


def test_storing_known_bytes_whose_object_is_missing_puts_the_object_back(db, store):
    blob = store_blob(io.BytesIO(b"lost"), store=store).blob
    store.delete(blob.storage_key)

    stored = store_blob(io.BytesIO(b"lost"), store=store)

    assert stored.created is False
    with store.open(blob.storage_key) as handle:
        assert handle.read() == b"lost"


# Streaming


def test_a_large_stream_is_read_in_pieces_of_at_most_one_mib(db, store):
    stream = RecordingStream(b"\x01" * (5 * MiB + 123))

    store_blob(stream, store=store)

    assert len(stream.read_sizes) > 5
    assert all(size is not None and 0 < size <= MiB for size in stream.read_sizes)


def test_a_large_stream_is_read_only_once(db, store):
    data = bytes(range(256)) * (6 * MiB // 256) + b"tail"
    stream = RecordingStream(data)

    blob = store_blob(stream, store=store).blob

    assert stream.bytes_read == len(data)
    assert blob.size == len(data)
    assert blob.sha256 == sha256(data)


def test_a_failing_stream_raises_its_error(db, store):
    with pytest.raises(OSError, match="connection reset"):
        store_blob(BrokenStream(good=3 * MiB), store=store)


def test_a_failing_stream_leaves_no_object_and_no_row(db, store, package_storage):
    with pytest.raises(OSError, match="connection reset"):
        store_blob(BrokenStream(good=3 * MiB), store=store)

    assert PackageBlob.objects.count() == 0
    assert files_under(package_storage) == []


def test_the_empty_blob_can_be_stored(db, store):
    empty = hashlib.sha256(b"").hexdigest()

    stored = store_blob(io.BytesIO(b""), store=store)

    assert stored.created is True
    assert stored.blob.size == 0
    assert stored.blob.sha256 == empty
    assert stored.blob.sha512 is None
    assert store.exists(stored.blob.storage_key)
    assert store.size(stored.blob.storage_key) == 0


# Races (PostgreSQL only: SQLite serialises writers, so these races cannot happen there)


@pytest.fixture
def postgresql():
    if not on_postgresql():
        pytest.skip(
            "concurrency test needs PostgreSQL: run with "
            "DATABASE_URL=postgres://postgres@127.0.0.1:5432/forge"
        )


def run_at_once(func, threads=THREADS):
    """Call `func` in `threads` threads released together; return (results, errors)."""
    barrier = threading.Barrier(threads)
    results = [None] * threads
    errors = []

    def work(index):
        try:
            barrier.wait(timeout=30)
            results[index] = func(index)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not any(worker.is_alive() for worker in workers), "a thread hung"
    return results, errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_stores_of_the_same_bytes_make_one_blob(postgresql, store, package_storage):
    data = b"race" * (64 * 1024)

    results, errors = run_at_once(lambda _: store_blob(io.BytesIO(data), store=store))

    assert errors == []
    assert PackageBlob.objects.count() == 1
    assert {stored.blob.pk for stored in results} == {PackageBlob.objects.get().pk}
    assert sum(stored.created for stored in results) == 1
    assert files_under(package_storage, "blobs") == [PackageBlob.objects.get().storage_key]
    assert files_under(package_storage, "uploads") == []
    assert (package_storage / PackageBlob.objects.get().storage_key).read_bytes() == data


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_get_or_create_package_makes_one_package(postgresql, alice):
    owner = Owner.objects.get(user=alice)
    names = ["web", "Web", "WEB", "wEb"]

    results, errors = run_at_once(
        lambda i: versions.get_or_create_package(owner, "container", names[i % len(names)])
    )

    assert errors == []
    assert Package.objects.filter(owner=owner).count() == 1
    assert {package.pk for package in results} == {Package.objects.get().pk}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_get_or_create_version_makes_one_version(postgresql, alice):
    package = versions.get_or_create_package(alice.package_owner, "container", "web")

    results, errors = run_at_once(lambda _: versions.get_or_create_version(package, "latest"))

    assert errors == []
    assert package.versions.count() == 1
    assert {version.pk for version, _ in results} == {package.versions.get().pk}
    assert sum(created for _, created in results) == 1
