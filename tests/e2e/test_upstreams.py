"""The mirror tests' upstreams work on their own: Distribution counts, refuses, lies."""

from __future__ import annotations

import http.client
import json

import pytest

from .conftest import Credentials
from .layouts import make_image, make_index, read_blob
from .upstreams import (
    Request,
    blob_path,
    client_tool,
    count_matching,
    lying_upstream,
    parse_requests,
    running_distribution,
    sha256,
)

UPSTREAM_CREDS = Credentials("upstream-user", "upstream-pw")


@pytest.fixture(scope="module")
def skopeo(tmp_path_factory):
    return client_tool("skopeo", tmp_path_factory.mktemp("skopeo"), "127.0.0.1")


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    directory = tmp_path_factory.mktemp("layout")
    return directory, make_image(directory, "1.0", layers=[{"a.txt": b"a\n"}, {"b.txt": b"b\n"}])


def get(host: str, path: str, headers: dict[str, str] | None = None):
    address, port = host.split(":")
    connection = http.client.HTTPConnection(address, int(port), timeout=30)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def test_both_log_formats_count_each_request_once():
    access = (
        'time="t" level=info msg="response completed" http.request.method=GET '
        'http.request.uri="/v2/a/b/blobs/sha256:' + "0" * 64 + '" http.response.status=200\n'
        '127.0.0.1 - - [07/Dec/2026:17:58:22 +0000] "GET /v2/a/b/blobs/sha256:'
        + "0" * 64
        + ' HTTP/1.1" 200 2 "" "skopeo"\n'
    )
    logrus_only = "\n".join(line for line in access.splitlines() if "response completed" in line)
    pattern = blob_path("a/b")
    assert count_matching(parse_requests(access), "GET", pattern) == 1
    assert count_matching(parse_requests(logrus_only), "GET", pattern) == 1
    assert count_matching(parse_requests(access), "HEAD", pattern) == 0
    assert (
        count_matching([Request("GET", "/v2/other/blobs/sha256:" + "0" * 64)], "GET", pattern) == 0
    )


def test_distribution_takes_a_push_and_counts_blob_gets(skopeo, image, tmp_path):
    directory, info = image
    with running_distribution(tmp_path / "registry") as upstream:
        upstream.push(skopeo, directory, "1.0", "library/app", "1.0")
        assert upstream.blob_gets("library/app") == 0
        raw = skopeo(
            "inspect",
            "--raw",
            "--tls-verify=false",
            f"docker://{upstream.host}/library/app:1.0",
            binary=True,
        ).stdout
        assert sha256(raw) == info.manifest_digest
        skopeo(
            "copy",
            "--src-tls-verify=false",
            f"docker://{upstream.host}/library/app:1.0",
            f"oci:{tmp_path / 'pulled'}:x",
        )
        # The config and two layers, one GET each.
        assert upstream.blob_gets("library/app") == 3
        assert upstream.blob_gets("library/app", info.layer_digests[0]) == 1
        assert upstream.count("GET", r"/v2/library/app/manifests/1\.0") >= 1

        upstream.stop()
        assert not upstream.running
        with pytest.raises(ConnectionRefusedError):
            get(upstream.host, "/v2/")
        upstream.start()
        assert get(upstream.host, "/v2/")[0] == 200
        # The log and storage carry over a restart.
        assert upstream.blob_gets("library/app") == 3
        status, _, body = get(upstream.host, f"/v2/library/app/blobs/{info.layer_digests[1]}")
        assert status == 200
        assert sha256(body) == info.layer_digests[1]


def test_htpasswd_distribution_refuses_without_credentials(skopeo, image, tmp_path):
    directory, info = image
    with running_distribution(tmp_path / "registry", credentials=UPSTREAM_CREDS) as upstream:
        reference = f"docker://{upstream.host}/private/app:1.0"
        refused = skopeo(
            "copy", "--dest-tls-verify=false", f"oci:{directory}:1.0", reference, check=False
        )
        assert refused.returncode != 0
        status, headers, _ = get(upstream.host, "/v2/")
        assert status == 401
        assert headers["WWW-Authenticate"].startswith("Basic ")

        upstream.push(skopeo, directory, "1.0", "private/app", "1.0")
        assert get(upstream.host, "/v2/", {"Authorization": UPSTREAM_CREDS.basic_header})[0] == 200
        wrong = Credentials(UPSTREAM_CREDS.username, "wrong")
        assert get(upstream.host, "/v2/", {"Authorization": wrong.basic_header})[0] == 401
        raw = skopeo(
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            UPSTREAM_CREDS.joined,
            reference,
            binary=True,
        ).stdout
        assert sha256(raw) == info.manifest_digest


def test_distribution_serves_a_multi_arch_index(skopeo, tmp_path):
    index = make_index(tmp_path / "layout", "multi")
    with running_distribution(tmp_path / "registry") as upstream:
        upstream.push(skopeo, tmp_path / "layout", "multi", "library/multi", "1", all_images=True)
        reference = f"docker://{upstream.host}/library/multi:1"
        raw = skopeo("inspect", "--raw", "--tls-verify=false", reference, binary=True).stdout
        assert sha256(raw) == index.index_digest
        skopeo(
            "copy",
            "--src-tls-verify=false",
            "--override-arch",
            "arm64",
            reference,
            f"oci:{tmp_path / 'pulled'}:arm",
        )
        arm = index.children[("linux", "arm64")]
        amd = index.children[("linux", "amd64")]
        assert upstream.blob_gets("library/multi", arm.layer_digests[1]) == 1
        assert upstream.blob_gets("library/multi", amd.layer_digests[1]) == 0


def test_lying_upstream_serves_bytes_that_do_not_match_the_digest(skopeo, tmp_path):
    with lying_upstream(tmp_path / "layout") as liar:
        status, _, body = get(liar.host, f"/v2/{liar.repository}/manifests/{liar.tag}")
        assert status == 200
        manifest = json.loads(body)
        layer = manifest["layers"][0]
        assert layer["digest"] == liar.layer_digest

        status, _, served = get(liar.host, f"/v2/{liar.repository}/blobs/{liar.layer_digest}")
        assert status == 200
        assert len(served) == layer["size"]
        assert sha256(served) != liar.layer_digest
        assert sha256(liar.true_layer) == liar.layer_digest
        assert liar.blob_gets(liar.repository, liar.layer_digest) == 1

        # A real client notices too.
        failed = skopeo(
            "copy",
            "--src-tls-verify=false",
            f"docker://{liar.host}/{liar.repository}:{liar.tag}",
            f"oci:{tmp_path / 'pulled'}:x",
            check=False,
        )
        assert failed.returncode != 0
        assert "digest" in failed.stderr.lower(), failed.stderr
        config = read_blob(tmp_path / "layout", manifest["config"]["digest"])
        assert (
            get(liar.host, f"/v2/{liar.repository}/blobs/{manifest['config']['digest']}")[2]
            == config
        )
