"""A server killed with SIGKILL in the middle of large monolithic pushes leaves drafts
that no row names; after a restart `cleanup_packages` removes them, and nothing else.

The module runs a forge site of its own (`start_forge`), so killing its server and
cleaning up with no grace period disturbs no other module. Each push declares 150 MiB
and sends a few: enough for the server to be writing the draft when it is killed,
without the test sending the rest. That the grace period keeps young orphans, and
every other kind of orphan, are tests/packages_core/test_cleanup_orphans.py's.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import random
import re
import signal
import socket
import time
from pathlib import Path

import pytest
from django.template.defaultfilters import filesizeformat

MiB = 1024 * 1024
DECLARED = 150 * MiB
ORPHANS = re.compile(
    r"orphaned in storage: (\d+) blob objects?, (\d+) upload files?, (\d+) lock files?, "
    r"(\d+) multipart uploads?\)"
)


@pytest.fixture(scope="module")
def site(start_forge):
    return start_forge(name="crash")


def orphan_counts(output: str) -> tuple[int, ...]:
    """Blob objects, upload files, lock files and multipart uploads of the summary line."""
    match = ORPHANS.search(output)
    assert match is not None, output
    return tuple(int(count) for count in match.groups())


def freed(output: str) -> str:
    match = re.search(r", (\S+ \S+) freed", output)
    assert match is not None, output
    return match[1]


def drafts(server) -> list[Path]:
    return sorted((server.data_dir / "packages").rglob("*.part"))


def wait_for_draft(server, digest: str, size: int) -> Path:
    """The draft of the push of `digest`, once the server has written `size` bytes to it:
    beside the blob's key for a sha256 digest; under uploads/ for a sha512 one, whose
    content address is known only at the end.
    """
    algorithm, hex_digest = digest.split(":", 1)
    root = server.data_dir / "packages"
    if algorithm == "sha256":
        folder, pattern = root / "blobs" / "sha256" / hex_digest[:2], f"{hex_digest}.*.part"
    else:
        folder, pattern = root / "uploads", "*.part"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [path for path in folder.glob(pattern) if path.stat().st_size >= size]
        if found:
            return found[0]
        time.sleep(0.05)
    pytest.fail(f"no draft of {size} bytes for {digest} under {folder}")


def draft_is_locked(path: Path) -> bool:
    """Whether a writer holds the draft's lock (as cleanup asks before removing it)."""
    with path.open("rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def start_push(server, repository: str, digest: str, length: int, first: bytes) -> socket.socket:
    """A monolithic push (`POST ?digest=`) of `length` bytes of which only `first` is
    sent yet; the connection, to send the rest on.
    """
    host, port = server.host.rsplit(":", 1)
    connection = socket.create_connection((host, int(port)), timeout=30)
    head = (
        f"POST /v2/{repository}/blobs/uploads/?digest={digest} HTTP/1.1\r\n"
        f"Host: {server.host}\r\n"
        f"Authorization: {server.alice.basic_header}\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Content-Length: {length}\r\n\r\n"
    )
    connection.sendall(head.encode() + first)
    return connection


def status_of(connection: socket.socket) -> int:
    answer = b""
    while b"\r\n" not in answer:
        data = connection.recv(4096)
        if not data:
            break
        answer += data
    return int(answer.split(b" ", 2)[1])


def test_what_killed_pushes_left_is_removed_after_a_restart_and_a_live_push_is_not(
    site, start_forge
):
    # 1. The server is killed while it writes the drafts of two 150 MiB layers, one
    # pushed by its sha256, one by its sha512.
    never = b"the 150 MiB this push never finished"
    promised = [
        f"sha256:{hashlib.sha256(never).hexdigest()}",
        f"sha512:{hashlib.sha512(never).hexdigest()}",
    ]
    first = random.Random(1).randbytes(4 * MiB)
    killed_pushes = [
        start_push(site, "alice/crash", digest, DECLARED, first) for digest in promised
    ]
    killed_drafts = [wait_for_draft(site, digest, 2 * MiB) for digest in promised]
    # The master and its workers: they share its process group (start_new_session).
    os.killpg(site.process.pid, signal.SIGKILL)
    site.process.wait(10)
    for connection in killed_pushes:
        connection.close()
    # The workers die a moment after the master; their locks go with them.
    deadline = time.monotonic() + 10
    while any(map(draft_is_locked, killed_drafts)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(draft_is_locked, killed_drafts)), "the writers are gone with their locks"

    # 2. Restarted on the same database and data dir, the server has no row for them.
    server = start_forge(share_with=site, name="crash-restarted")
    for digest in promised:
        head = server.request("HEAD", f"/v2/alice/crash/blobs/{digest}", creds=server.alice)
        assert head.status == 404

    # 3. A push in flight on the restarted server: its writer holds its draft's lock.
    data = random.Random(2).randbytes(6 * MiB)
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    live_push = start_push(server, "alice/crash", digest, len(data), data[: 2 * MiB])
    try:
        live_draft = wait_for_draft(server, digest, MiB)
        assert draft_is_locked(live_draft)

        # With no grace period the killed pushes' drafts go, and the live one stays.
        size = sum(draft.stat().st_size for draft in killed_drafts)
        done = server.manage("cleanup_packages", "--older-than", "0s")
        assert orphan_counts(done) == (0, 2, 0, 0), done
        assert freed(done) == filesizeformat(size).replace("\xa0", " "), done
        assert drafts(server) == [live_draft]

        live_push.sendall(data[2 * MiB :])
        assert status_of(live_push) == 201
    finally:
        live_push.close()

    pulled = server.request("GET", f"/v2/alice/crash/blobs/{digest}", creds=server.alice)
    assert pulled.status == 200
    assert hashlib.sha256(pulled.body).hexdigest() == digest.split(":", 1)[1]
    assert drafts(server) == [], "the finished push renamed its draft into place"
