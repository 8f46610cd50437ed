"""BlobHasher: sha256 of a stream, and sha512 (on a helper thread) only when asked."""

import hashlib
import os

import pytest

from packages_core.hashing import PARALLEL_MIN_BYTES, BlobHasher


@pytest.mark.parametrize(
    "sizes",
    [
        [],
        [1],
        [PARALLEL_MIN_BYTES - 1, PARALLEL_MIN_BYTES, PARALLEL_MIN_BYTES + 1],
        [1024 * 1024] * 5 + [17] + [3 * 1024 * 1024],
    ],
)
def test_digests_match_hashlib_whatever_the_piece_sizes(sizes):
    pieces = [os.urandom(size) for size in sizes]
    hasher = BlobHasher(sha512=True)
    for piece in pieces:
        hasher.update(piece)
    whole = b"".join(pieces)
    digests = hasher.digests()
    assert digests.size == len(whole)
    assert digests.sha256 == hashlib.sha256(whole).hexdigest()
    assert digests.sha512 == hashlib.sha512(whole).hexdigest()


def test_sha512_is_not_computed_unless_asked():
    hasher = BlobHasher()
    hasher.update(os.urandom(2 * PARALLEL_MIN_BYTES))

    assert hasher.digests().sha512 is None


def test_digests_can_be_read_midway_and_hashing_goes_on():
    first, second = os.urandom(2 * PARALLEL_MIN_BYTES), os.urandom(3 * PARALLEL_MIN_BYTES)
    hasher = BlobHasher(sha512=True)
    hasher.update(first)
    assert hasher.digests().sha512 == hashlib.sha512(first).hexdigest()
    hasher.update(second)
    assert hasher.digests().sha512 == hashlib.sha512(first + second).hexdigest()
    assert hasher.size == len(first) + len(second)
