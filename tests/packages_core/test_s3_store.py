"""The content store and S3Objects against a real S3 API (moto's server on loopback)."""

from __future__ import annotations

import hashlib
import io
import os
import urllib.error
import urllib.request
from urllib.parse import parse_qsl, urlsplit

import pytest

from packages_core.content_store import ContentStore
from packages_core.s3 import MIN_PART_SIZE, UPLOAD_PART_SIZE, S3Objects
from tests.s3_helpers import sigv4_signature_is_valid

MIB = 1024 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def store(s3_storage):
    """The default content store, on the test's bucket."""
    store = ContentStore.default()
    assert store.s3 is not None
    return store


def put(store: ContentStore, key: str, data: bytes) -> bytes:
    store.save(key, io.BytesIO(data))
    return data


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ClientSpy:
    """Records the keyword arguments of chosen boto3 client calls, still making them."""

    def __init__(self, monkeypatch, client, *names: str):
        self.calls: dict[str, list[dict]] = {name: [] for name in names}
        for name in names:
            original = getattr(client, name)

            def spy(*args, _name=name, _original=original, **kwargs):
                self.calls[_name].append(kwargs)
                return _original(*args, **kwargs)

            monkeypatch.setattr(client, name, spy)

    def __getitem__(self, name: str) -> list[dict]:
        return self.calls[name]

    def reset(self) -> None:
        for calls in self.calls.values():
            calls.clear()


COMPOSE_CALLS = (
    "create_multipart_upload",
    "upload_part",
    "upload_part_copy",
    "complete_multipart_upload",
    "abort_multipart_upload",
    "put_object",
    "copy_object",
)


@pytest.fixture
def spy(store, monkeypatch):
    return ClientSpy(monkeypatch, store.s3.client, *COMPOSE_CALLS, "get_object")


# Saving, reading, deleting, moving


def test_save_writes_the_bytes_under_exactly_the_key(store, s3_storage):
    key = store.save("blobs/sha256/ab/abc", io.BytesIO(b"payload"))

    assert key == "blobs/sha256/ab/abc"
    assert s3_storage.list_keys() == ["blobs/sha256/ab/abc"]
    assert s3_storage.read("blobs/sha256/ab/abc") == b"payload"


def test_save_overwrites_the_exact_key(store, s3_storage):
    put(store, "a/b", b"first")

    assert store.save("a/b", io.BytesIO(b"second")) == "a/b"

    assert s3_storage.list_keys() == ["a/b"]
    assert s3_storage.read("a/b") == b"second"


class OneWayStream:
    """A request body: read once, no length, no seek."""

    def __init__(self, data: bytes, fail_after: int | None = None):
        self._data, self._position, self._fail_after = data, 0, fail_after

    def read(self, size: int = -1) -> bytes:
        if self._fail_after is not None and self._position >= self._fail_after:
            raise OSError("client went away")
        size = len(self._data) if size is None or size < 0 else size
        chunk = self._data[self._position : self._position + size]
        self._position += len(chunk)
        return chunk


def test_save_of_a_small_stream_is_one_put(store, s3_storage, spy):
    store.save("small", OneWayStream(b"x" * 1000))

    assert len(spy["put_object"]) == 1
    assert spy["create_multipart_upload"] == []
    assert s3_storage.read("small") == b"x" * 1000


def test_save_of_an_empty_stream_is_an_empty_object(store, s3_storage):
    store.save("empty", OneWayStream(b""))

    assert s3_storage.read("empty") == b""


@pytest.mark.parametrize(
    "size", [UPLOAD_PART_SIZE, UPLOAD_PART_SIZE + 1, 2 * UPLOAD_PART_SIZE + 123]
)
def test_save_of_a_large_stream_is_sent_in_parts_of_8_mib(
    store, s3_storage, spy, size, monkeypatch
):
    """The stream has no length; each part is sent (by a helper thread, with the
    caller's client) while the next is read.
    """
    sent = []
    original = S3Objects._upload_part

    def upload_part(self, client, key, upload_id, number, data):
        sent.append((number, len(data)))
        return original(self, client, key, upload_id, number, data)

    monkeypatch.setattr(S3Objects, "_upload_part", upload_part)
    data = os.urandom(size)

    store.save("big", OneWayStream(data))

    sizes = [length for _number, length in sent]
    assert sizes[:-1] == [UPLOAD_PART_SIZE] * (len(sizes) - 1)
    assert 0 < sizes[-1] <= UPLOAD_PART_SIZE
    assert sum(sizes) == size
    assert [number for number, _length in sent] == list(range(1, len(sizes) + 1))
    assert len(spy["create_multipart_upload"]) == len(spy["complete_multipart_upload"]) == 1
    assert spy["put_object"] == []
    assert store.size("big") == size
    assert sha256(s3_storage.read("big")) == sha256(data)


def test_a_stream_failing_midway_aborts_its_multipart_upload(store, s3_storage, spy):
    data = os.urandom(2 * UPLOAD_PART_SIZE)

    with pytest.raises(OSError, match="client went away"):
        store.save("big", OneWayStream(data, fail_after=UPLOAD_PART_SIZE + MIB))

    assert len(spy["abort_multipart_upload"]) == 1
    assert not store.exists("big")
    assert s3_storage.client.list_multipart_uploads(Bucket=s3_storage.name).get("Uploads") in (
        None,
        [],
    )


def test_saving_a_large_stream_reuses_the_callers_s3_client(store, monkeypatch):
    store.s3.client  # noqa: B018 - the caller's own session, made on its first use
    sessions = []
    original = type(store.storage)._create_session

    def create_session(self):
        sessions.append(self)
        return original(self)

    monkeypatch.setattr(type(store.storage), "_create_session", create_session)

    for number in range(2):
        store.save(f"big-{number}", OneWayStream(os.urandom(UPLOAD_PART_SIZE + 1)))

    assert sessions == []


def test_storages_share_one_loader_of_the_service_models(s3_storage):
    """Each thread's boto3 session would otherwise parse botocore's JSON models again."""
    first = ContentStore.default().storage
    s3_storage.configure()  # a new storage instance, as another worker thread gets
    second = ContentStore.default().storage
    assert first is not second

    loaders = [storage.connection.meta.client._loader for storage in (first, second)]

    assert loaders[0] is loaders[1]


def test_exists_and_size(store):
    put(store, "a/b", b"12345")

    assert store.exists("a/b")
    assert not store.exists("a/c")
    assert store.size("a/b") == 5


def test_size_of_a_missing_key_is_file_not_found(store):
    with pytest.raises(FileNotFoundError):
        store.size("missing")


def test_open_reads_the_whole_object(store):
    put(store, "a/b", b"payload")

    with store.open("a/b") as handle:
        assert handle.read() == b"payload"


def test_delete_removes_the_object(store, s3_storage):
    put(store, "a/b", b"x")

    store.delete("a/b")

    assert not store.exists("a/b")
    assert s3_storage.list_keys() == []


def test_delete_of_a_missing_key_is_not_an_error(store):
    store.delete("never/was")

    assert not store.exists("never/was")


def test_move_gives_the_bytes_the_new_key_and_drops_the_old(store, s3_storage):
    data = put(store, "uploads/staged", os.urandom(70_000))

    store.move("uploads/staged", "blobs/sha256/ab/final")

    assert s3_storage.list_keys() == ["blobs/sha256/ab/final"]
    assert s3_storage.read("blobs/sha256/ab/final") == data


def test_move_overwrites_the_target(store, s3_storage):
    put(store, "target", b"old")
    put(store, "source", b"new")

    store.move("source", "target")

    assert s3_storage.list_keys() == ["target"]
    assert s3_storage.read("target") == b"new"


def test_move_is_a_server_side_copy(store, spy):
    put(store, "source", b"bytes that stay in the bucket")
    spy.reset()

    store.move("source", "target")

    assert len(spy["copy_object"]) == 1
    assert spy["get_object"] == []
    assert spy["put_object"] == []


def test_the_store_is_not_local(store):
    assert not store.is_local
    assert store.local_path("a/b") is None


# Ranged reads


def test_reader_of_a_range_returns_exactly_those_bytes(store, spy):
    data = put(store, "blob", os.urandom(1000))

    with store.reader("blob", 10, 19) as handle:
        assert handle.read() == data[10:20]

    assert spy["get_object"][-1]["Range"] == "bytes=10-19"


def test_reader_from_an_offset_to_the_end(store, spy):
    data = put(store, "blob", os.urandom(1000))

    with store.reader("blob", 990) as handle:
        assert handle.read() == data[990:]

    assert spy["get_object"][-1]["Range"] == "bytes=990-"


def test_reader_of_the_whole_object_sends_no_range(store, spy):
    data = put(store, "blob", os.urandom(1000))

    with store.reader("blob") as handle:
        assert handle.read() == data

    assert "Range" not in spy["get_object"][-1]


def test_reader_of_the_first_bytes(store):
    data = put(store, "blob", os.urandom(1000))

    with store.reader("blob", 0, 0) as handle:
        assert handle.read() == data[:1]


def test_reader_streams_the_object_as_it_is_read(store):
    """Each read returns at most what was asked for; nothing is fetched whole first."""
    data = put(store, "blob", os.urandom(3 * MIB + 17))

    handle = store.reader("blob", 5, len(data) - 3)
    received = []
    try:
        while chunk := handle.read(256 * 1024):
            assert len(chunk) <= 256 * 1024
            received.append(chunk)
    finally:
        handle.close()

    assert len(received) > 1
    assert b"".join(received) == data[5:-2]


@pytest.mark.parametrize("span", [(0, None), (0, 10)], ids=["whole", "range"])
def test_reader_of_a_missing_key_is_file_not_found(store, span):
    """As on a file system, so callers (blob_response) handle one exception."""
    with pytest.raises(FileNotFoundError):
        store.reader("missing", *span)


# Composing


def compose(store, s3_storage, target: str, pieces: list[bytes], spy=None) -> bytes:
    """Save `pieces` as objects, compose them into `target`; the bytes stored there.

    `spy`, if given, is reset before composing, so it sees only the composition.
    """
    sources = []
    for number, data in enumerate(pieces):
        key = f"uploads/session.pieces/{number:04d}"
        put(store, key, data)
        sources.append((key, len(data)))
    if spy is not None:
        spy.reset()
    store.compose(target, sources)
    expected = b"".join(pieces)
    stored = s3_storage.read(target)
    assert len(stored) == len(expected)
    assert sha256(stored) == sha256(expected)
    assert store.size(target) == len(expected)
    return stored


def test_compose_of_one_piece_is_a_plain_copy(store, s3_storage, spy):
    piece = os.urandom(MIB)

    compose(store, s3_storage, "blobs/final", [piece], spy)

    assert len(spy["copy_object"]) == 1
    assert spy["create_multipart_upload"] == []
    assert spy["put_object"] == []


def test_compose_skips_empty_pieces(store, s3_storage, spy):
    piece = os.urandom(1000)

    compose(store, s3_storage, "blobs/final", [b"", piece, b""], spy)

    assert len(spy["copy_object"]) == 1
    assert spy["create_multipart_upload"] == []


def test_compose_of_small_pieces_uploads_one_part(store, s3_storage, spy):
    pieces = [os.urandom(100 * 1024), os.urandom(MIB), os.urandom(2 * MIB + 5)]

    compose(store, s3_storage, "blobs/final", pieces, spy)

    assert len(spy["create_multipart_upload"]) == 1
    assert spy["upload_part_copy"] == []
    assert [call["PartNumber"] for call in spy["upload_part"]] == [1]
    assert len(spy["upload_part"][0]["Body"]) == sum(map(len, pieces))
    [completed] = spy["complete_multipart_upload"]
    assert completed["MultipartUpload"]["Parts"][0]["PartNumber"] == 1
    assert spy["abort_multipart_upload"] == []


def test_compose_of_many_small_pieces_uploads_parts_of_five_mib(store, s3_storage, spy):
    """S3 refuses parts under 5 MiB but the last; 7 x 1.5 MiB make 5 + 5 + 0.5 MiB."""
    pieces = [os.urandom(3 * MIB // 2) for _ in range(7)]

    compose(store, s3_storage, "blobs/final", pieces, spy)

    assert [len(call["Body"]) for call in spy["upload_part"]] == [
        MIN_PART_SIZE,
        MIN_PART_SIZE,
        7 * (3 * MIB // 2) - 2 * MIN_PART_SIZE,
    ]
    assert spy["upload_part_copy"] == []


def test_compose_copies_pieces_of_five_mib_or_more_server_side(store, s3_storage, spy):
    big, bigger, tail = os.urandom(MIN_PART_SIZE), os.urandom(6 * MIB + 1), os.urandom(1000)

    compose(store, s3_storage, "blobs/final", [big, bigger, tail], spy)

    copies = spy["upload_part_copy"]
    assert [(call["PartNumber"], call["CopySourceRange"]) for call in copies] == [
        (1, f"bytes=0-{len(big) - 1}"),
        (2, f"bytes=0-{len(bigger) - 1}"),
    ]
    assert [call["CopySource"]["Key"] for call in copies] == [
        "uploads/session.pieces/0000",
        "uploads/session.pieces/0001",
    ]
    # Only the small tail passed through this process.
    assert [(call["PartNumber"], len(call["Body"])) for call in spy["upload_part"]] == [(3, 1000)]
    [completed] = spy["complete_multipart_upload"]
    assert [part["PartNumber"] for part in completed["MultipartUpload"]["Parts"]] == [1, 2, 3]


def test_compose_tops_up_small_pieces_from_the_next_big_one(store, s3_storage, spy):
    """1 MiB buffered, then a 10 MiB piece: 4 MiB of it complete a 5 MiB part, the
    remaining 6 MiB are copied server-side.
    """
    small, big = os.urandom(MIB), os.urandom(10 * MIB)

    compose(store, s3_storage, "blobs/final", [small, big], spy)

    assert [(call["PartNumber"], len(call["Body"])) for call in spy["upload_part"]] == [
        (1, MIN_PART_SIZE)
    ]
    topped_up = MIN_PART_SIZE - len(small)
    ranged = [call.get("Range") for call in spy["get_object"]]
    assert f"bytes=0-{topped_up - 1}" in ranged
    [copy] = spy["upload_part_copy"]
    assert copy["PartNumber"] == 2
    assert copy["CopySourceRange"] == f"bytes={topped_up}-{len(big) - 1}"


def test_compose_of_a_big_piece_between_small_ones(store, s3_storage, spy):
    pieces = [os.urandom(6 * MIB), os.urandom(300 * 1024), os.urandom(7 * MIB), os.urandom(10)]

    compose(store, s3_storage, "blobs/final", pieces, spy)

    parts = spy["complete_multipart_upload"][0]["MultipartUpload"]["Parts"]
    assert [part["PartNumber"] for part in parts] == list(range(1, len(parts) + 1))
    assert spy["upload_part_copy"][0]["CopySourceRange"] == f"bytes=0-{6 * MIB - 1}"


def test_compose_of_nothing_is_an_empty_object(store, s3_storage):
    store.compose("blobs/empty", [])

    assert s3_storage.read("blobs/empty") == b""
    assert store.size("blobs/empty") == 0


def test_compose_of_only_empty_pieces_is_an_empty_object(store, s3_storage):
    put(store, "uploads/empty", b"")

    store.compose("blobs/empty", [("uploads/empty", 0)])

    assert s3_storage.read("blobs/empty") == b""


def test_compose_leaves_its_pieces_alone(store, s3_storage):
    pieces = [os.urandom(1000), os.urandom(2000)]

    compose(store, s3_storage, "blobs/final", pieces)

    assert s3_storage.read("uploads/session.pieces/0000") == pieces[0]
    assert s3_storage.read("uploads/session.pieces/0001") == pieces[1]


def test_a_failed_compose_aborts_its_multipart_upload(store, s3_storage, spy):
    put(store, "uploads/one", b"x" * 1000)

    with pytest.raises(Exception):  # noqa: PT011, B017 - botocore's NoSuchKey
        store.compose("blobs/final", [("uploads/one", 1000), ("uploads/missing", 1000)])

    assert len(spy["abort_multipart_upload"]) == 1
    assert s3_storage.client.list_multipart_uploads(Bucket=s3_storage.name).get("Uploads") in (
        None,
        [],
    )
    assert not store.exists("blobs/final")


# Presigned URLs


def fetch(url: str, method: str = "GET", headers: dict | None = None):
    request = urllib.request.Request(url, method=method, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.headers, response.read()


def test_url_is_presigned_for_get_and_serves_the_bytes_with_the_content_type(store):
    data = put(store, "blobs/sha256/ab/abc", os.urandom(5000))

    url = store.url("blobs/sha256/ab/abc", method="GET", expire=120, content_type=OCI_MANIFEST)

    query = dict(parse_qsl(urlsplit(url).query))
    assert query["X-Amz-Expires"] == "120"
    assert query["response-content-type"] == OCI_MANIFEST
    assert sigv4_signature_is_valid(url, "GET")
    assert not sigv4_signature_is_valid(url, "HEAD")
    status, headers, body = fetch(url)
    assert status == 200
    assert body == data
    assert headers["Content-Type"] == OCI_MANIFEST


def test_url_for_head_is_signed_for_head(store):
    put(store, "blob", b"0123456789")

    url = store.url("blob", method="HEAD", expire=60, content_type="application/octet-stream")

    assert sigv4_signature_is_valid(url, "HEAD")
    assert not sigv4_signature_is_valid(url, "GET")
    status, headers, body = fetch(url, "HEAD")
    assert status == 200
    assert headers["Content-Length"] == "10"
    assert body == b""


def test_url_without_a_content_type_asks_for_none(store):
    put(store, "blob", b"x")

    url = store.url("blob", method="GET", expire=60)

    assert "response-content-type" not in dict(parse_qsl(urlsplit(url).query))
    assert sigv4_signature_is_valid(url, "GET")


def test_url_answers_ranged_gets(store):
    data = put(store, "blob", os.urandom(1000))

    status, _headers, body = fetch(
        store.url("blob", method="GET"), headers={"Range": "bytes=10-19"}
    )

    assert status == 206
    assert body == data[10:20]


def test_url_of_a_missing_object_is_404_at_the_storage(store):
    url = store.url("missing", method="GET")

    with pytest.raises(urllib.error.HTTPError) as raised:
        fetch(url)

    assert raised.value.code == 404


# A key prefix (FORGE_S3_PREFIX, django-storages' `location`)


@pytest.fixture
def prefixed(s3_storage):
    config = s3_storage.configure(FORGE_S3_PREFIX="/registry/packages/")
    assert config["OPTIONS"]["location"] == "registry/packages"
    store = ContentStore.default()
    assert store.s3 is not None
    return store


def test_a_prefix_puts_keys_under_it(prefixed, s3_storage):
    put(prefixed, "blobs/sha256/ab/abc", b"payload")

    assert s3_storage.list_keys() == ["registry/packages/blobs/sha256/ab/abc"]
    assert prefixed.exists("blobs/sha256/ab/abc")
    assert prefixed.size("blobs/sha256/ab/abc") == 7
    assert S3Objects(prefixed.storage).key("blobs/x") == "registry/packages/blobs/x"


def test_a_prefix_applies_to_moves_reads_and_deletes(prefixed, s3_storage):
    data = put(prefixed, "uploads/staged", os.urandom(1000))

    prefixed.move("uploads/staged", "blobs/final")

    assert s3_storage.list_keys() == ["registry/packages/blobs/final"]
    with prefixed.reader("blobs/final", 100, 199) as handle:
        assert handle.read() == data[100:200]
    prefixed.delete("blobs/final")
    assert s3_storage.list_keys() == []


def test_a_prefix_applies_to_composed_pieces_and_their_target(prefixed, s3_storage, monkeypatch):
    spy = ClientSpy(monkeypatch, prefixed.s3.client, "upload_part_copy")
    pieces = [os.urandom(MIN_PART_SIZE), os.urandom(1000)]
    for number, data in enumerate(pieces):
        put(prefixed, f"uploads/p{number}", data)

    prefixed.compose("blobs/final", [("uploads/p0", len(pieces[0])), ("uploads/p1", 1000)])

    assert spy["upload_part_copy"][0]["CopySource"]["Key"] == "registry/packages/uploads/p0"
    assert spy["upload_part_copy"][0]["Key"] == "registry/packages/blobs/final"
    assert sha256(s3_storage.read("registry/packages/blobs/final")) == sha256(b"".join(pieces))


def test_a_prefix_is_part_of_the_presigned_url(prefixed):
    put(prefixed, "blobs/abc", b"payload")

    url = prefixed.url("blobs/abc", method="GET")

    assert urlsplit(url).path.endswith("/registry/packages/blobs/abc")
    assert fetch(url)[2] == b"payload"
