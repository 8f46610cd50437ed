"""Live servers on S3 (moto's server on loopback): real clients push and pull through
307 redirects to presigned URLs, and one chunked upload crosses two gunicorn servers.

Server A stores blobs in the bucket and redirects pulls (FORGE_SERVE_DIRECT defaults
on); server B shares A's database, data dir and bucket with FORGE_SERVE_DIRECT=false,
so it streams blobs from the bucket itself.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import urllib.request
from urllib.parse import urlsplit

import pytest

from tests.s3_helpers import bucket_keys, drop_bucket, make_bucket, s3_env

from .conftest import ServerDidNotStart, Tool, isolated_client_env, require_tool
from .layouts import OCI_MANIFEST, make_image, read_blob, read_tagged

MIB = 1024 * 1024


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob_key(digest: str) -> str:
    hex_digest = digest.split(":", 1)[1]
    return f"blobs/sha256/{hex_digest[:2]}/{hex_digest}"


def fetch(url: str, headers: dict | None = None):
    """A request straight to the storage, as a client following the redirect sends it."""
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, response.headers, response.read()


def access_log_statuses(server, method: str, path: str) -> list[str]:
    """The statuses gunicorn's access log shows for `method path` on `server`."""
    pattern = re.compile(rf'"{method} {re.escape(path)}(?:\?[^ ]*)? HTTP/1\.1" (\d{{3}}) ')
    return pattern.findall(server.log_path.read_text(errors="replace"))


# --- the servers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def bucket(s3_server, s3_admin):
    name = make_bucket(s3_admin)
    yield name
    drop_bucket(s3_admin, name)


@pytest.fixture(scope="module")
def site_a(s3_server, bucket, start_forge):
    """A forge site on the bucket, redirecting pulls to presigned URLs."""
    return start_forge(s3_env(s3_server, bucket, FORGE_S3_ADDRESSING_STYLE="path"), name="s3-a")


@pytest.fixture(scope="module")
def site_b(start_forge, site_a):
    """A second server on A's database, data dir and bucket, streaming pulls itself."""
    return start_forge({"FORGE_SERVE_DIRECT": "false"}, share_with=site_a, name="s3-b")


@pytest.fixture
def keys(s3_admin, bucket):
    return lambda prefix="": bucket_keys(s3_admin, bucket, prefix)


@pytest.fixture(scope="module")
def skopeo_a(site_a, tmp_path_factory) -> Tool:
    path = require_tool("skopeo")
    env = isolated_client_env(tmp_path_factory.mktemp("skopeo-s3"), site_a.host)
    return Tool([path, "--insecure-policy"], env)


@pytest.fixture(scope="module")
def podman_a(site_a, tmp_path_factory) -> Tool:
    """podman on a throwaway vfs store, signed in to server A as alice."""
    path = require_tool("podman")
    directory = tmp_path_factory.mktemp("podman-s3")
    env = isolated_client_env(directory, site_a.host)
    podman = Tool(
        [
            path,
            "--root",
            str(directory / "storage"),
            "--runroot",
            str(directory / "runroot"),
            "--storage-driver",
            "vfs",
        ],
        env,
    )
    creds = site_a.alice
    podman("login", "--tls-verify=false", "-u", creds.username, "-p", creds.password, site_a.host)
    return podman


@pytest.fixture(scope="module")
def app_image(tmp_path_factory):
    """A three-layer image; one layer (random bytes, so gzip cannot shrink it) is
    over 5 MiB.
    """
    directory = tmp_path_factory.mktemp("s3-app-layout")
    info = make_image(
        directory,
        "1.0",
        layers=[
            {"etc/app/config.toml": b'name = "s3"\n'},
            {"usr/share/app/blob.bin": os.urandom(6 * MIB)},
            {"srv/readme.txt": b"three layers on S3\n"},
        ],
    )
    return directory, info


@pytest.fixture(scope="module")
def pushed_app(skopeo_a, site_a, app_image):
    directory, info = app_image
    reference = f"docker://{site_a.host}/alice/s3/app:1.0"
    skopeo_a(
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--dest-creds",
        site_a.alice.joined,
        f"oci:{directory}:1.0",
        reference,
    )
    return reference, info


def push_blob(server, repository: str, data: bytes) -> str:
    digest = "sha256:" + sha256_hex(data)
    answer = server.request(
        "POST",
        f"/v2/{repository}/blobs/uploads/?digest={digest}",
        creds=server.alice,
        body=data,
    )
    assert answer.status == 201, answer.body
    return digest


# --- (a) skopeo to A and back, following the redirects ----------------------------------


def test_skopeo_copies_a_multilayer_image_to_s3_and_back(
    skopeo_a, site_a, app_image, pushed_app, keys, tmp_path
):
    directory, info = app_image
    reference, _ = pushed_app

    stored = keys("blobs/")
    for digest in [info.manifest_digest, info.config_digest, *info.layer_digests]:
        assert blob_key(digest) in stored
    assert keys("uploads/") == []

    skopeo_a(
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        site_a.alice.joined,
        reference,
        f"oci:{tmp_path}:pulled",
    )

    entry = read_tagged(tmp_path, "pulled")
    assert entry["digest"] == info.manifest_digest
    manifest = json.loads(read_blob(tmp_path, entry["digest"]))
    assert manifest["mediaType"] == OCI_MANIFEST
    assert [layer["digest"] for layer in manifest["layers"]] == info.layer_digests
    for digest in [info.config_digest, *info.layer_digests]:
        assert read_blob(tmp_path, digest) == read_blob(directory, digest)
    # skopeo was sent to the bucket for every blob.
    for digest in [info.config_digest, *info.layer_digests]:
        path = f"/v2/alice/s3/app/blobs/{digest}"
        assert "307" in access_log_statuses(site_a, "GET", path), path


def test_a_blob_get_on_a_redirects_to_a_presigned_url_with_the_bytes(
    site_a, app_image, pushed_app, s3_server, bucket
):
    directory, info = app_image
    big_layer = info.layer_digests[1]

    answer = site_a.request("GET", f"/v2/alice/s3/app/blobs/{big_layer}", creds=site_a.alice)

    assert answer.status == 307
    assert answer.headers["Docker-Content-Digest"] == big_layer
    location = answer.headers["Location"]
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}" == s3_server
    assert parts.path == f"/{bucket}/{blob_key(big_layer)}"
    status, headers, body = fetch(location)
    assert status == 200
    assert headers["Content-Type"] == "application/octet-stream"
    assert body == read_blob(directory, big_layer)


def test_a_manifest_get_on_a_redirects_to_the_manifest_with_its_media_type(
    site_a, app_image, pushed_app
):
    directory, info = app_image

    answer = site_a.request(
        "GET",
        "/v2/alice/s3/app/manifests/1.0",
        creds=site_a.alice,
        headers={"Accept": OCI_MANIFEST},
    )

    assert answer.status == 307
    status, headers, body = fetch(answer.headers["Location"])
    assert status == 200
    assert headers["Content-Type"] == OCI_MANIFEST
    assert body == read_blob(directory, info.manifest_digest)


# --- (b) podman pulls from A ------------------------------------------------------------


def test_podman_pulls_from_s3_an_image_pushed_with_skopeo(podman_a, site_a, pushed_app):
    _, info = pushed_app
    target = f"{site_a.host}/alice/s3/app:1.0"
    podman_a("rmi", "--all", "--force")

    podman_a("pull", "--tls-verify=false", target)

    [pulled] = json.loads(podman_a("image", "inspect", target).stdout)
    assert pulled["Digest"] == info.manifest_digest
    assert pulled["Id"] == info.config_digest.split(":", 1)[1]
    assert pulled["RootFS"]["Layers"] == info.diff_ids
    assert "307" in access_log_statuses(site_a, "GET", "/v2/alice/s3/app/manifests/1.0")


def test_podman_push_to_s3_pulls_back_identical(podman_a, site_a, keys, tmp_path):
    """podman sends its layers as chunked PATCH bodies (no Content-Length)."""
    podman_a("rmi", "--all", "--force")
    context = tmp_path / "context"
    context.mkdir()
    (context / "payload.bin").write_bytes(os.urandom(MIB))
    (context / "Containerfile").write_text("FROM scratch\nCOPY payload.bin /payload.bin\n")
    local = "localhost/e2e/s3-hello:v1"
    podman_a("build", "--format", "oci", "-t", local, str(context), timeout=300)
    [built] = json.loads(podman_a("image", "inspect", local).stdout)
    target = f"{site_a.host}/alice/s3/podman:v1"
    digest_file = tmp_path / "digest"

    podman_a("push", "--tls-verify=false", "--digestfile", str(digest_file), local, target)
    podman_a("rmi", "--all", "--force")
    podman_a("pull", "--tls-verify=false", target)

    [pulled] = json.loads(podman_a("image", "inspect", target).stdout)
    assert pulled["Digest"] == digest_file.read_text().strip()
    assert pulled["Id"] == built["Id"]
    assert pulled["RootFS"]["Layers"] == built["RootFS"]["Layers"]
    assert blob_key(pulled["Digest"]) in keys("blobs/")
    assert keys("uploads/") == []


# --- (c) one chunked upload through two servers -----------------------------------------


def test_a_chunked_upload_continues_on_another_server(site_a, site_b, keys, s3_server):
    pieces = [os.urandom(5 * MIB + 1), os.urandom(300 * 1024), os.urandom(70_000)]
    data = b"".join(pieces)
    digest = "sha256:" + sha256_hex(data)
    repository = "alice/s3/chunked"

    started = site_a.request("POST", f"/v2/{repository}/blobs/uploads/", creds=site_a.alice)
    assert started.status == 202, started.body
    location = started.headers["Location"]

    offset = 0
    for server, piece in zip([site_a, site_b, site_a], pieces, strict=True):
        end = offset + len(piece) - 1
        answer = server.request(
            "PATCH",
            location,
            creds=server.alice,
            headers={
                "Content-Range": f"{offset}-{end}",
                "Content-Type": "application/octet-stream",
            },
            body=piece,
        )
        assert answer.status == 202, (server.url, answer.status, answer.body)
        assert answer.headers["Range"] == f"0-{end}"
        offset += len(piece)
    assert len(keys("uploads/")) == 3

    finished = site_b.request("PUT", f"{location}?digest={digest}", creds=site_b.alice, body=b"")
    assert finished.status == 201, finished.body
    assert finished.headers["Docker-Content-Digest"] == digest

    assert keys("uploads/") == []
    assert blob_key(digest) in keys("blobs/")
    streamed = site_b.request("GET", f"/v2/{repository}/blobs/{digest}", creds=site_b.alice)
    assert streamed.status == 200
    assert sha256_hex(streamed.body) == sha256_hex(data)
    redirected = site_a.request("GET", f"/v2/{repository}/blobs/{digest}", creds=site_a.alice)
    assert redirected.status == 307
    assert redirected.headers["Location"].startswith(s3_server)
    assert sha256_hex(fetch(redirected.headers["Location"])[2]) == sha256_hex(data)


def test_a_stale_chunk_on_the_other_server_is_416(site_a, site_b, keys):
    repository = "alice/s3/stale"
    started = site_a.request("POST", f"/v2/{repository}/blobs/uploads/", creds=site_a.alice)
    location = started.headers["Location"]
    first = site_a.request(
        "PATCH", location, creds=site_a.alice, headers={"Content-Range": "0-9"}, body=b"0" * 10
    )
    assert first.status == 202

    again = site_b.request(
        "PATCH", location, creds=site_b.alice, headers={"Content-Range": "0-9"}, body=b"1" * 10
    )

    assert again.status == 416
    assert again.headers["Range"] == "0-9"
    deleted = site_b.request("DELETE", location, creds=site_b.alice)
    assert deleted.status == 204


# --- (d) HEAD on A, (e) ranges on B -----------------------------------------------------


def test_a_blob_head_on_a_is_200_without_a_redirect(site_a, app_image, pushed_app):
    _, info = app_image
    layer = info.layers[1]

    answer = site_a.request("HEAD", f"/v2/alice/s3/app/blobs/{layer.digest}", creds=site_a.alice)

    assert answer.status == 200
    assert answer.headers["Content-Length"] == str(layer.size)
    assert answer.headers["Docker-Content-Digest"] == layer.digest
    assert "Location" not in answer.headers


def test_a_range_get_on_b_is_206_with_exactly_those_bytes(site_b, site_a):
    data = os.urandom(100_000)
    digest = push_blob(site_a, "alice/s3/ranged", data)

    answer = site_b.request(
        "GET",
        f"/v2/alice/s3/ranged/blobs/{digest}",
        creds=site_b.alice,
        headers={"Range": "bytes=1000-1999"},
    )

    assert answer.status == 206
    assert answer.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    assert answer.headers["Content-Length"] == "1000"
    assert answer.body == data[1000:2000]


def test_b_streams_whole_blobs_and_manifests_itself(site_b, app_image, pushed_app):
    directory, info = app_image

    blob = site_b.request(
        "GET", f"/v2/alice/s3/app/blobs/{info.layer_digests[1]}", creds=site_b.alice
    )
    manifest = site_b.request(
        "GET",
        "/v2/alice/s3/app/manifests/1.0",
        creds=site_b.alice,
        headers={"Accept": OCI_MANIFEST},
    )

    assert blob.status == 200
    assert "Location" not in blob.headers
    assert blob.body == read_blob(directory, info.layer_digests[1])
    assert manifest.status == 200
    assert manifest.headers["Content-Type"] == OCI_MANIFEST
    assert manifest.body == read_blob(directory, info.manifest_digest)


# --- (f) a missing bucket stops the server at start-up ----------------------------------


def test_a_server_whose_bucket_does_not_exist_does_not_start(start_forge, site_a):
    missing = "forge-test-no-such-bucket"

    with pytest.raises(ServerDidNotStart) as failed:
        start_forge({"FORGE_S3_BUCKET": missing}, share_with=site_a, name="s3-missing")

    assert "exited with code" in str(failed.value)
    assert "packages.E005" in failed.value.log
    assert f"The S3 bucket '{missing}' does not exist" in failed.value.log


def test_an_unreachable_s3_endpoint_stops_the_server_at_start_up(start_forge, site_a):
    with pytest.raises(ServerDidNotStart) as failed:
        start_forge(
            {"FORGE_S3_ENDPOINT_URL": "http://127.0.0.1:1"},
            share_with=site_a,
            name="s3-unreachable",
        )

    assert "packages.E005" in failed.value.log
    assert "cannot be reached" in failed.value.log


def test_a_url_expiry_that_is_no_number_stops_the_server_at_start_up(start_forge, site_a):
    with pytest.raises(ServerDidNotStart) as failed:
        start_forge({"FORGE_S3_URL_EXPIRY": "soon"}, share_with=site_a, name="s3-expiry")

    assert "registry.E004" in failed.value.log
    assert "'soon'" in failed.value.log


def test_the_servers_answer_with_no_connection_problems(site_a, site_b):
    """Both are up on the shared database (a smoke check of the harness itself)."""
    for server in (site_a, site_b):
        connection = http.client.HTTPConnection("127.0.0.1", urlsplit(server.url).port, timeout=5)
        try:
            connection.request("GET", "/v2/", headers={"Authorization": server.alice.basic_header})
            assert connection.getresponse().status == 200
        finally:
            connection.close()
