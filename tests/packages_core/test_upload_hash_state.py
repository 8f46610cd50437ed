"""The running SHA-256 of an upload travels on its row, sealed, to whichever worker goes on.

Each test reloads the row before every call, as a request landing on another worker or
node would: nothing of an upload lives in a process's memory.
"""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from packages_core import resumable_sha256
from packages_core.models import BlobUpload
from packages_core.resumable_sha256 import STATE_SIZE
from packages_core.services import uploads

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(alice):
    return alice.package_owner


def reloaded(upload) -> BlobUpload:
    return BlobUpload.objects.get(pk=upload.pk)


def append_all(upload, pieces):
    offset = 0
    for piece in pieces:
        uploads.append_to_upload(reloaded(upload), io.BytesIO(piece), offset=offset)
        offset += len(piece)
    return reloaded(upload)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_every_piece_goes_on_from_the_saved_state_and_finishing_reads_nothing(
    owner, store, rehashes
):
    pieces = [os.urandom(n) for n in (1, 63, 1000, 300_000, 17)]
    row = append_all(uploads.start_upload(owner, "img"), pieces)
    data = b"".join(pieces)

    digests = uploads.upload_digests(row)
    stored = uploads.complete_upload(row, digests)

    assert rehashes == []
    assert (digests.size, digests.sha256) == (len(data), sha256(data))
    assert stored.blob.sha256 == sha256(data)
    with store.open(stored.blob.storage_key) as handle:
        assert handle.read() == data


def test_the_row_holds_the_state_and_its_seal(owner, store):
    row = append_all(uploads.start_upload(owner, "img"), [b"hello"])

    state = bytes(row.hash_state)

    assert len(state) == STATE_SIZE + 32  # Go's form of the state, then an HMAC-SHA256
    assert state.startswith(b"sha\x03")


def test_finishing_with_a_sha512_digest_hashes_the_staged_bytes_once(owner, store, rehashes):
    pieces = [os.urandom(70_000), os.urandom(130_000)]
    row = append_all(uploads.start_upload(owner, "img"), pieces)
    data = b"".join(pieces)

    digests = uploads.upload_digests(row, sha512=True)
    stored = uploads.complete_upload(row, digests)

    assert rehashes == [len(data)]
    assert digests.sha512 == hashlib.sha512(data).hexdigest()
    assert stored.blob.sha512 == digests.sha512


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda state: state[:-1] + bytes([state[-1] ^ 1]), id="seal-flipped"),
        pytest.param(lambda state: state[:40] + bytes([state[40] ^ 1]) + state[41:], id="state"),
        pytest.param(lambda state: state[:STATE_SIZE], id="seal-missing"),
        pytest.param(lambda state: b"garbage", id="garbage"),
    ],
)
def test_a_state_that_does_not_verify_is_not_used_and_finishing_hashes_once(
    owner, store, rehashes, spoil
):
    pieces = [os.urandom(5000), os.urandom(7000), os.urandom(11)]
    upload = uploads.start_upload(owner, "img")
    first = append_all(upload, pieces[:1])
    BlobUpload.objects.filter(pk=upload.pk).update(hash_state=spoil(bytes(first.hash_state)))
    uploads.append_to_upload(reloaded(upload), io.BytesIO(pieces[1]), offset=5000)
    uploads.append_to_upload(reloaded(upload), io.BytesIO(pieces[2]), offset=12000)
    assert rehashes == []  # no piece re-read what came before it

    row = reloaded(upload)
    digests = uploads.upload_digests(row)

    assert bytes(row.hash_state) == b""
    assert rehashes == [12011]
    assert digests.sha256 == sha256(b"".join(pieces))


def test_a_state_copied_from_another_upload_is_refused(owner, store, rehashes):
    same = os.urandom(4000)
    donor = append_all(uploads.start_upload(owner, "img"), [same])
    taker = append_all(uploads.start_upload(owner, "img"), [os.urandom(4000)])
    BlobUpload.objects.filter(pk=taker.pk).update(hash_state=bytes(donor.hash_state))

    digests = uploads.upload_digests(reloaded(taker))

    assert rehashes == [4000]  # the donor's digest would have been wrong
    assert digests.sha256 != sha256(same)


def test_a_state_sealed_under_another_secret_key_is_not_used(owner, store, rehashes, settings):
    data = os.urandom(9000)
    row = append_all(uploads.start_upload(owner, "img"), [data])
    settings.SECRET_KEY = "another-key-" + "x" * 50

    digests = uploads.upload_digests(reloaded(row))

    assert rehashes == [9000]
    assert digests.sha256 == sha256(data)


def test_without_the_openssl_binding_no_state_is_kept_and_finishing_hashes_once(
    owner, store, rehashes, monkeypatch
):
    monkeypatch.setattr(resumable_sha256, "available", lambda: False)
    pieces = [os.urandom(3000), os.urandom(5000)]
    row = append_all(uploads.start_upload(owner, "img"), pieces)

    stored = uploads.complete_upload(row)

    assert bytes(row.hash_state) == b""
    assert rehashes == [8000]
    assert stored.blob.sha256 == sha256(b"".join(pieces))


def test_an_upload_of_nothing_finishes_as_the_empty_blob_without_reading(owner, store, rehashes):
    row = reloaded(uploads.start_upload(owner, "img"))

    stored = uploads.complete_upload(row)

    assert rehashes == []
    assert stored.blob.sha256 == sha256(b"")
