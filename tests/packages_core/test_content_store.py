"""The content store over the file system, and the hashing reader it stores through."""

import hashlib
import io

import pytest

from packages_core.content_store import ContentStore, HashingReader


def read(store, key):
    with store.open(key) as handle:
        return handle.read()


# Saving and reading


def test_save_writes_the_bytes_under_the_key(store, package_storage):
    store.save("blobs/sha256/ab/abc", io.BytesIO(b"payload"))

    assert (package_storage / "blobs/sha256/ab/abc").read_bytes() == b"payload"


def test_save_returns_the_key(store):
    assert store.save("a/b", io.BytesIO(b"x")) == "a/b"


def test_open_reads_the_saved_bytes(store):
    store.save("a/b", io.BytesIO(b"payload"))

    assert read(store, "a/b") == b"payload"


def test_save_overwrites_the_exact_key(store, package_storage):
    store.save("a/b", io.BytesIO(b"first"))

    key = store.save("a/b", io.BytesIO(b"second"))

    assert key == "a/b"
    assert read(store, "a/b") == b"second"
    assert [path.name for path in (package_storage / "a").iterdir()] == ["b"]


def test_save_of_a_large_stream_keeps_every_byte(store):
    data = bytes(range(256)) * (3 * 1024 * 1024 // 256 + 7)

    store.save("big", io.BytesIO(data))

    assert store.size("big") == len(data)
    assert hashlib.sha256(read(store, "big")).digest() == hashlib.sha256(data).digest()


def test_a_failed_save_leaves_nothing_behind(store, package_storage):
    class Broken:
        def read(self, size=-1):
            raise OSError("client went away")

    with pytest.raises(OSError, match="client went away"):
        store.save("a/b", Broken())

    assert not store.exists("a/b")
    assert [path for path in package_storage.rglob("*") if path.is_file()] == []


def test_a_failed_save_keeps_the_object_that_was_there(store):
    class Broken:
        def read(self, size=-1):
            raise OSError("client went away")

    store.save("a/b", io.BytesIO(b"old"))

    with pytest.raises(OSError, match="client went away"):
        store.save("a/b", Broken())

    assert read(store, "a/b") == b"old"


def test_exists_is_true_only_for_saved_keys(store):
    store.save("a/b", io.BytesIO(b"x"))

    assert store.exists("a/b") is True
    assert store.exists("a/c") is False


def test_size_is_the_number_of_bytes_saved(store):
    store.save("a/b", io.BytesIO(b"12345"))

    assert store.size("a/b") == 5


# Deleting and moving


def test_delete_removes_the_object(store):
    store.save("a/b", io.BytesIO(b"x"))

    store.delete("a/b")

    assert not store.exists("a/b")


def test_deleting_a_missing_key_is_not_an_error(store):
    store.delete("never/saved")

    assert not store.exists("never/saved")


def test_move_gives_the_object_the_new_key(store):
    store.save("uploads/tmp", io.BytesIO(b"moved bytes"))

    store.move("uploads/tmp", "blobs/sha256/ab/abc")

    assert read(store, "blobs/sha256/ab/abc") == b"moved bytes"


def test_move_removes_the_source(store):
    store.save("uploads/tmp", io.BytesIO(b"x"))

    store.move("uploads/tmp", "blobs/sha256/ab/abc")

    assert not store.exists("uploads/tmp")


def test_move_creates_the_target_parent_directories(store, package_storage):
    store.save("uploads/tmp", io.BytesIO(b"x"))
    assert not (package_storage / "deep").exists()

    store.move("uploads/tmp", "deep/er/still/target")

    assert (package_storage / "deep/er/still/target").is_file()


def test_move_replaces_an_existing_target(store):
    store.save("uploads/tmp", io.BytesIO(b"new"))
    store.save("target", io.BytesIO(b"old"))

    store.move("uploads/tmp", "target")

    assert read(store, "target") == b"new"


# The local file system


def test_the_default_store_writes_to_the_configured_storage(package_storage):
    store = ContentStore.default()

    store.save("k", io.BytesIO(b"x"))

    assert (package_storage / "k").is_file()


def test_a_file_system_store_is_local(store):
    assert store.is_local is True


def test_a_local_store_has_no_direct_url(store):
    store.save("a/b", io.BytesIO(b"x"))

    assert store.url("a/b") is None
    assert store.url("a/b", method="HEAD") is None


# HashingReader


def test_hashing_reader_passes_the_bytes_through():
    reader = HashingReader(io.BytesIO(b"abcdef"))

    assert reader.read(4) + reader.read() == b"abcdef"


def test_hashing_reader_digests_the_bytes_read():
    data = b"digest me" * 1000
    reader = HashingReader(io.BytesIO(data))
    while reader.read(333):
        pass

    digests = reader.digests()

    assert digests.size == len(data)
    assert digests.sha256 == hashlib.sha256(data).hexdigest()
    assert digests.sha512 is None


def test_hashing_reader_digests_sha512_when_asked():
    data = b"digest me" * 1000
    reader = HashingReader(io.BytesIO(data), sha512=True)
    while reader.read(333):
        pass

    assert reader.digests().sha512 == hashlib.sha512(data).hexdigest()


def test_hashing_reader_of_nothing_has_the_empty_digests():
    reader = HashingReader(io.BytesIO(b""))

    assert reader.read() == b""
    assert reader.digests().size == 0
    assert reader.digests().sha256 == hashlib.sha256(b"").hexdigest()


def test_hashing_reader_stops_at_its_limit():
    reader = HashingReader(io.BytesIO(b"0123456789"), limit=4)

    assert reader.read() == b"0123"
    assert reader.read() == b""
    assert reader.read(10) == b""


def test_hashing_reader_with_a_limit_serves_small_reads_up_to_the_limit():
    reader = HashingReader(io.BytesIO(b"0123456789"), limit=5)

    assert [reader.read(2), reader.read(2), reader.read(2), reader.read(2)] == [
        b"01",
        b"23",
        b"4",
        b"",
    ]


def test_hashing_reader_with_a_limit_leaves_the_rest_of_the_stream_unread():
    stream = io.BytesIO(b"0123456789")
    reader = HashingReader(stream, limit=4)
    reader.read()

    assert stream.read() == b"456789"


def test_hashing_reader_with_a_limit_digests_only_the_bytes_within_it():
    reader = HashingReader(io.BytesIO(b"0123456789"), limit=4)
    reader.read()

    digests = reader.digests()

    assert digests.size == 4
    assert digests.sha256 == hashlib.sha256(b"0123").hexdigest()


def test_hashing_reader_with_a_limit_beyond_the_stream_reads_it_all():
    reader = HashingReader(io.BytesIO(b"short"), limit=100)

    assert reader.read() == b"short"
    assert reader.digests().size == 5


def test_saving_through_a_hashing_reader_hashes_what_was_stored(store):
    data = b"stored and hashed" * 10_000
    reader = HashingReader(io.BytesIO(data))

    store.save("k", reader)

    assert reader.digests().sha256 == hashlib.sha256(read(store, "k")).hexdigest()
