"""A full disk: a server whose data dir (SQLite, cache, blobs) is a small tmpfs.

A write that finds no room answers 507 in the spec's error format and leaves none of
its bytes behind; the upload goes on from its recorded offset once there is room;
an upload that filled the disk can be cancelled; pulls and `cleanup_packages` work
while another process keeps the disk full (new pushes get 507).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.ci import unavailable

MiB = 1024 * 1024
TMPFS_SIZE = 64 * MiB


@pytest.fixture(scope="module")
def small_disk():
    """A tmpfs of TMPFS_SIZE, mounted for this module (needs root, as in CI)."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        unavailable("mounting a tmpfs needs root", "root")
    mountpoint = Path(tempfile.mkdtemp(prefix="forge-full-"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mountpoint)],
        check=True,
    )
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)
        mountpoint.rmdir()


@pytest.fixture(scope="module")
def site(start_forge, small_disk):
    return start_forge({"FORGE_DATA_DIR": str(small_disk / "data")}, name="full")


def free_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def send_body(site, method: str, path: str, size: int, headers: dict | None = None):
    """Send `size` random bytes as the body, stopping early if the server answers first
    (it does not read the rest of a body it has refused); (status, headers, body).
    """
    parts = urlsplit(site.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
        head = {
            "Host": parts.netloc,
            "Authorization": site.alice.basic_header,
            "Content-Length": str(size),
            "Content-Type": "application/octet-stream",
            **(headers or {}),
        }
        lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in head.items())]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        piece = os.urandom(MiB)
        sent = 0
        with contextlib.suppress(OSError):
            while sent < size:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                sock.sendall(piece[: min(MiB, size - sent)])
                sent += min(MiB, size - sent)
        answer = b""
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                more = sock.recv(65536)
                if not more:
                    break
                answer += more
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), answer[:200]
    fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), fields, body


def fill(path: Path) -> Path:
    """A file that takes every free byte of the disk `path` is on."""
    filler = path / "filler"
    with filler.open("wb") as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * MiB)
            handle.flush()
    with contextlib.suppress(OSError), filler.open("ab") as handle:
        while True:
            handle.write(b"\0" * 4096)
            handle.flush()
    return filler


def test_a_full_disk_refuses_writes_cleanly_and_keeps_serving(site, small_disk):
    # An image to pull later, pushed while there is room.
    layer = os.urandom(64 * 1024)
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    pushed = site.request(
        "POST", f"/v2/alice/full/blobs/uploads/?digest={digest}", creds=site.alice, body=layer
    )
    assert pushed.status == 201, pushed.body

    started = site.request("POST", "/v2/alice/full/blobs/uploads/", creds=site.alice)
    assert started.status == 202, started.body
    location = started.headers["Location"]
    first = os.urandom(2 * MiB)
    patched = site.request(
        "PATCH", location, creds=site.alice, body=first, headers={"Content-Length": str(2 * MiB)}
    )
    assert patched.status == 202, patched.body
    room = free_bytes(small_disk)

    # A PATCH bigger than the room left: refused, and none of its bytes stay.
    status, headers, body = send_body(site, "PATCH", location, room + 8 * MiB)
    assert status == 507, body
    assert headers.get("Docker-Distribution-Api-Version") == "registry/2.0"
    assert json.loads(body)["errors"][0]["message"]
    assert free_bytes(small_disk) >= room - MiB  # the partial piece was freed at once
    state = site.request("GET", location, creds=site.alice)
    assert state.status == 204
    assert state.headers["Range"] == f"0-{2 * MiB - 1}"  # resumable where it was

    # A monolithic push that does not fit: refused, its draft removed.
    status, _, body = send_body(
        site, "POST", f"/v2/alice/full/blobs/uploads/?digest=sha256:{'1' * 64}", room + 8 * MiB
    )
    assert status == 507, body
    assert free_bytes(small_disk) >= room - MiB

    filler = fill(small_disk)
    try:
        assert free_bytes(small_disk) < 64 * 1024
        # Pulls do not write.
        pulled = site.request("GET", f"/v2/alice/full/blobs/{digest}", creds=site.alice)
        assert pulled.status == 200
        assert pulled.body == layer
        # A push answers 507 in JSON, never an HTML 500.
        status, headers, body = send_body(
            site, "POST", f"/v2/alice/full/blobs/uploads/?digest=sha256:{'2' * 64}", 4 * MiB
        )
        assert status == 507, body
        assert json.loads(body)["errors"]
        # Cleanup runs: its dry run (which writes nothing) with no grace period, and a
        # real run that finds nothing old enough.
        dry = site.manage("cleanup_packages", "--older-than", "0s", "--dry-run")
        assert "1 idle upload" in dry, dry
        assert "versions removed" in site.manage("cleanup_packages")
    finally:
        filler.unlink()

    # With room again the upload goes on from its offset and finishes.
    rest = os.urandom(MiB)
    data = first + rest
    patched = site.request(
        "PATCH",
        location,
        creds=site.alice,
        body=rest,
        headers={"Content-Range": f"{2 * MiB}-{3 * MiB - 1}"},
    )
    assert patched.status == 202, patched.body
    final = "sha256:" + hashlib.sha256(data).hexdigest()
    separator = "&" if "?" in location else "?"
    done = site.request("PUT", f"{location}{separator}digest={final}", creds=site.alice, body=b"")
    assert done.status == 201, done.body


def test_an_upload_that_filled_the_disk_can_be_cancelled(site, small_disk):
    started = site.request("POST", "/v2/alice/cancel/blobs/uploads/", creds=site.alice)
    assert started.status == 202, started.body
    location = started.headers["Location"]
    patched = site.request("PATCH", location, creds=site.alice, body=os.urandom(MiB))
    assert patched.status == 202, patched.body
    room = free_bytes(small_disk)
    status, _, body = send_body(site, "PATCH", location, room + 8 * MiB)
    assert status == 507, body

    cancelled = site.request("DELETE", location, creds=site.alice)

    assert cancelled.status == 204, cancelled.body
    assert site.request("GET", location, creds=site.alice).status == 404
    assert free_bytes(small_disk) >= room + MiB // 2  # its staged bytes went with it
