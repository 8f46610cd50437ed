"""ResumableSha256: OpenSSL's SHA-256 whose state is saved as bytes and resumed elsewhere."""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys

import pytest

from packages_core import resumable_sha256
from packages_core.resumable_sha256 import STATE_SIZE, ResumableSha256, StateInvalid


def test_the_binding_loads_and_passes_its_self_check_here():
    # CI runs on Debian's OpenSSL 3, which exports SHA256_*: the fast path must be on.
    assert resumable_sha256.available() is True


@pytest.mark.parametrize("size", [0, 1, 55, 56, 63, 64, 65, 127, 128, 1000, 3 * 1024 * 1024 + 7])
def test_digest_matches_hashlib(size):
    data = os.urandom(size)
    hasher = ResumableSha256()
    hasher.update(data)

    assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()
    assert hasher.size == size


@pytest.mark.parametrize("cut", [0, 1, 63, 64, 65, 4096, 99_999, 100_000])
def test_a_state_exported_and_resumed_gives_the_digest_of_the_whole(cut):
    data = os.urandom(100_000)
    first = ResumableSha256()
    first.update(data[:cut])

    state = first.export()
    resumed = ResumableSha256.from_state(state)
    resumed.update(data[cut:])

    assert len(state) == STATE_SIZE
    assert resumed.size == len(data)
    assert resumed.hexdigest() == hashlib.sha256(data).hexdigest()


def test_digest_does_not_end_the_running_hash():
    hasher = ResumableSha256()
    hasher.update(b"abc")
    assert hasher.hexdigest() == hashlib.sha256(b"abc").hexdigest()

    hasher.update(b"def")

    assert hasher.hexdigest() == hashlib.sha256(b"abcdef").hexdigest()


def test_a_state_resumes_in_another_process(tmp_path):
    data = os.urandom(300_000)
    first = ResumableSha256()
    first.update(data[:123_457])
    (tmp_path / "state").write_bytes(first.export())
    (tmp_path / "rest").write_bytes(data[123_457:])

    code = (
        "import sys; from pathlib import Path\n"
        "from packages_core.resumable_sha256 import ResumableSha256\n"
        "d = Path(sys.argv[1])\n"
        "h = ResumableSha256.from_state((d / 'state').read_bytes())\n"
        "h.update((d / 'rest').read_bytes())\n"
        "print(h.hexdigest())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == hashlib.sha256(data).hexdigest()


def test_the_state_is_gos_portable_form():
    # magic, eight big-endian words, the pending block zero-padded, the length.
    hasher = ResumableSha256()
    hasher.update(b"x" * 70)

    magic, *words, block, length = struct.unpack(">4s8I64sQ", hasher.export())

    assert magic == b"sha\x03"
    assert length == 70
    assert block == b"x" * 6 + b"\0" * 58
    assert words[0] != 0x6A09E667  # one block was compressed into the chaining words


@pytest.mark.parametrize(
    "state",
    [
        b"",
        b"sha\x03" + b"\0" * (STATE_SIZE - 5),
        b"md5\x01" + b"\0" * (STATE_SIZE - 4),
        # length 3, but bytes in the pending block past the third
        b"sha\x03" + b"\0" * 32 + b"abcd" + b"\0" * 60 + struct.pack(">Q", 3),
        # a length no hash could have reached
        b"sha\x03" + b"\0" * 96 + struct.pack(">Q", 2**63),
    ],
)
def test_states_no_hash_could_have_are_refused(state):
    with pytest.raises(StateInvalid):
        ResumableSha256.from_state(state)


def test_without_libcrypto_the_binding_reports_itself_unavailable(monkeypatch):
    monkeypatch.setattr(resumable_sha256, "_library", lambda: None)
    resumable_sha256.available.cache_clear()
    try:
        assert resumable_sha256.available() is False
    finally:
        monkeypatch.undo()
        resumable_sha256.available.cache_clear()


def test_a_binding_that_disagrees_with_hashlib_is_not_used(monkeypatch):
    monkeypatch.setattr(ResumableSha256, "hexdigest", lambda self: "0" * 64)
    resumable_sha256.available.cache_clear()
    try:
        assert resumable_sha256.available() is False
    finally:
        monkeypatch.undo()
        resumable_sha256.available.cache_clear()
    assert resumable_sha256.available() is True
