"""Pull-through mirrors (issue 18) against real upstreams: Distribution, a liar, ourselves."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from .conftest import Credentials, LiveRegistry
from .layouts import ImageInfo, IndexInfo, make_image, make_index, read_blob, read_tagged
from .upstreams import (
    Distribution,
    client_tool,
    lying_upstream,
    make_big_image,
    running_distribution,
    sha256,
)

# Loopback upstreams are refused unless the site allows them.
MIRROR_ENV = {"FORGE_MIRROR_ALLOWED_HOSTS": "127.0.0.1"}
# The tag TTL of the revalidation tests: short so the test is quick, long enough that
# the pushes and pulls of "before the TTL" fit inside it.
SHORT_TTL = 4
UPSTREAM_CREDS = Credentials("upstream-user", "upstream-pw-" + secrets.token_hex(4))
ADMIN = Credentials("mirror-admin", "mirror-admin-pw")
CONCURRENT_CLIENTS = 8


@dataclass
class Images:
    """What the shared upstream holds, and the layouts it was pushed from."""

    app: ImageInfo  # library/app:1.0
    layout: Path  # where every image above was written
    other: ImageInfo  # library/app:2.0; also what a moved tag moves to
    multi: IndexInfo  # multi/app:1
    big: ImageInfo  # big/app:1.0, one 100 MiB layer


# --- fixtures ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(start_forge) -> LiveRegistry:
    """The forge server the mirrors live on, with loopback upstreams allowed and a
    site admin (ADMIN) besides the seeded users.
    """
    registry = start_forge(MIRROR_ENV, name="mirror-site")
    registry.manage("createuser", ADMIN.username, "--password", ADMIN.password, "--admin")
    return registry


@pytest.fixture(scope="module")
def skopeo(site, tmp_path_factory):
    """skopeo for this module (the conftest's would start the session's server too)."""
    return client_tool("skopeo", tmp_path_factory.mktemp("mirror-skopeo"), site.host)


@pytest.fixture(scope="module")
def podman(site, tmp_path_factory):
    # Short: podman refuses a runroot path over 50 characters.
    return client_tool("podman", tmp_path_factory.mktemp("mp"), site.host)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory) -> Iterator[Distribution]:
    """A Distribution without auth, shared by the tests that never stop it."""
    with running_distribution(tmp_path_factory.mktemp("upstream")) as registry:
        yield registry


@pytest.fixture(scope="module")
def images(upstream, skopeo, tmp_path_factory) -> Images:
    layout = tmp_path_factory.mktemp("mirror-layouts")
    app = make_image(
        layout,
        "1.0",
        layers=[
            {"etc/app.conf": b"mirror = yes\n"},
            {"usr/bin/app": b"#!/bin/sh\necho mirrored\n" + secrets.token_bytes(64 * 1024)},
        ],
    )
    other = make_image(layout, "2.0", layers=[{"v2.txt": secrets.token_bytes(1024)}])
    multi = make_index(layout, "multi")
    # Built once per module, outside the checkout: the layout is 100 MiB.
    big = make_big_image(layout, "big")
    upstream.push(skopeo, layout, "1.0", "library/app", "1.0")
    upstream.push(skopeo, layout, "2.0", "library/app", "2.0")
    upstream.push(skopeo, layout, "multi", "multi/app", "1", all_images=True)
    upstream.push(skopeo, layout, "big", "big/app", "1.0")
    return Images(app=app, layout=layout, other=other, multi=multi, big=big)


# --- helpers -----------------------------------------------------------------------


def create_mirror(site: LiveRegistry, upstream_url: str, *options: str) -> str:
    """`manage.py createmirror` with a name no other test uses; returns the name."""
    name = f"mirror-{secrets.token_hex(4)}"
    output = site.manage("createmirror", name, "--upstream", upstream_url, *options)
    assert name in output, output
    return name


def pull(
    skopeo,
    site,
    reference: str,
    destination,
    *,
    creds: Credentials | None = None,
    extra: tuple[str, ...] = (),
    check: bool = True,
):
    """skopeo copy of HOST/`reference` (a tag or a digest reference) into an OCI layout,
    tagged there with the reference's tag (a digest's `:` made `-`).
    """
    separator = "@" if "@sha256:" in reference else ":"
    tag = reference.rsplit(separator, 1)[1].replace(":", "-")
    return skopeo(
        "copy",
        "--src-tls-verify=false",
        *(["--src-creds", creds.joined] if creds else []),
        *extra,
        f"docker://{site.host}/{reference}",
        f"oci:{destination}:{tag}",
        check=check,
    )


def inspect_raw(skopeo, site, reference: str, *, creds: Credentials | None = None, check=True):
    return skopeo(
        "inspect",
        "--raw",
        "--tls-verify=false",
        *(["--creds", creds.joined] if creds else []),
        f"docker://{site.host}/{reference}",
        binary=True,
        check=check,
    )


def assert_pulled(destination, tag: str, image: ImageInfo, layout) -> None:
    """The OCI layout skopeo wrote holds `image` byte for byte."""
    entry = read_tagged(destination, tag)
    assert entry["digest"] == image.manifest_digest
    manifest = json.loads(read_blob(destination, entry["digest"]))
    assert manifest["config"]["digest"] == image.config_digest
    assert [layer["digest"] for layer in manifest["layers"]] == image.layer_digests
    for digest in [image.config_digest, *image.layer_digests]:
        assert read_blob(destination, digest) == read_blob(layout, digest)


REDIRECTS = (301, 302, 303, 307, 308)


@contextlib.contextmanager
def opened(site: LiveRegistry, path: str, creds: Credentials | None):
    """A GET's response once redirects are followed (a blob may be served from elsewhere);
    Basic credentials go to the site only.
    """
    url = site.url + path
    for _ in range(4):
        parts = urlsplit(url)
        headers = (
            {"Authorization": creds.basic_header} if creds and parts.netloc == site.host else {}
        )
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
        try:
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            connection.request("GET", target, headers=headers)
            response = connection.getresponse()
            if response.status not in REDIRECTS:
                yield response
                return
            url = urljoin(url, response.headers["Location"])
        finally:
            connection.close()
    raise AssertionError(f"too many redirects for {path}")


def get(site: LiveRegistry, path: str, creds: Credentials | None = None) -> tuple[int, bytes]:
    with opened(site, path, creds) as response:
        return response.status, response.read()


def blob_digest(site: LiveRegistry, path: str, creds: Credentials | None) -> tuple[int, str | None]:
    """GET a blob, hashing it as it arrives; (status, sha256 of the body), or
    (status, None) when the server cut the body short.
    """
    with opened(site, path, creds) as response:
        digest = hashlib.sha256()
        try:
            while chunk := response.read(1024 * 1024):
                digest.update(chunk)
        except (http.client.IncompleteRead, ConnectionError):
            return response.status, None
        return response.status, "sha256:" + digest.hexdigest()


def error_text(body: bytes) -> str:
    """The OCI error body's codes, messages and details, flattened."""
    errors = json.loads(body)["errors"]
    assert errors, body
    return json.dumps(errors)


# --- tests -------------------------------------------------------------------------


def test_first_pull_gives_the_upstream_digests(site, skopeo, podman, upstream, images, tmp_path):
    name = create_mirror(site, upstream.url, "--visibility", "public")
    reference = f"{name}/library/app:1.0"

    raw = inspect_raw(skopeo, site, reference).stdout
    assert sha256(raw) == images.app.manifest_digest
    assert raw == read_blob(images.layout, images.app.manifest_digest)

    pull(skopeo, site, reference, tmp_path / "skopeo")
    assert_pulled(tmp_path / "skopeo", "1.0", images.app, images.layout)

    podman("pull", "--tls-verify=false", f"{site.host}/{reference}")
    inspected = json.loads(podman("image", "inspect", f"{site.host}/{reference}").stdout)[0]
    assert inspected["Digest"] == images.app.manifest_digest
    assert inspected["RootFS"]["Layers"] == images.app.diff_ids


def test_second_pull_fetches_no_blob_from_the_upstream(site, skopeo, upstream, images, tmp_path):
    name = create_mirror(site, upstream.url, "--visibility", "public")
    reference = f"{name}/library/app:1.0"
    blobs = [images.app.config_digest, *images.app.layer_digests]
    before = {digest: upstream.blob_gets("library/app", digest) for digest in blobs}

    pull(skopeo, site, reference, tmp_path / "first")
    after_first = {digest: upstream.blob_gets("library/app", digest) for digest in blobs}
    # Each blob crossed from the upstream at most once, streamed to the client and
    # stored (none if an earlier test's mirror brought it: the bytes are the digest's).
    assert all(after_first[d] - before[d] <= 1 for d in blobs), (before, after_first)

    pull(skopeo, site, reference, tmp_path / "second")
    digest_reference = f"{name}/library/app@{images.app.manifest_digest}"
    pull(skopeo, site, digest_reference, tmp_path / "by-digest")
    assert_pulled(tmp_path / "second", "1.0", images.app, images.layout)
    assert {d: upstream.blob_gets("library/app", d) for d in blobs} == after_first


def test_a_stopped_upstream_still_serves_what_is_cached(site, skopeo, images, tmp_path):
    layout = images.layout
    with running_distribution(tmp_path / "upstream") as own:
        own.push(skopeo, layout, "1.0", "library/app", "1.0")
        own.push(skopeo, layout, "2.0", "library/app", "2.0")
        # A short TTL, so the tag is due for revalidation while the upstream is down.
        name = create_mirror(site, own.url, "--visibility", "public", "--ttl", f"{SHORT_TTL}s")
        pull(skopeo, site, f"{name}/library/app:1.0", tmp_path / "warm")
        own.stop()

    time.sleep(SHORT_TTL + 1)
    pull(skopeo, site, f"{name}/library/app:1.0", tmp_path / "tag")
    assert_pulled(tmp_path / "tag", "1.0", images.app, layout)
    digest_reference = f"{name}/library/app@{images.app.manifest_digest}"
    pull(skopeo, site, digest_reference, tmp_path / "digest")
    entry = read_tagged(tmp_path / "digest", images.app.manifest_digest.replace(":", "-"))
    assert entry["digest"] == images.app.manifest_digest

    failed = pull(skopeo, site, f"{name}/library/app:2.0", tmp_path / "uncached", check=False)
    assert failed.returncode != 0
    # skopeo shows the body of 4xx errors only: the upstream's name is checked on the wire.
    status, body = get(site, f"/v2/{name}/library/app/manifests/2.0", ADMIN)
    assert status >= 400
    assert own.host in error_text(body)


def test_a_tag_moved_upstream_is_seen_after_the_ttl_and_not_before(
    site, skopeo, upstream, images, tmp_path
):
    repository = f"moving-{secrets.token_hex(3)}/app"
    upstream.push(skopeo, images.layout, "1.0", repository, "latest")
    name = create_mirror(site, upstream.url, "--visibility", "public", "--ttl", f"{SHORT_TTL}s")
    reference = f"{name}/{repository}:latest"
    tag_path = rf"/v2/{repository}/manifests/latest"

    # The mirror fetches the tag after this instant, so its TTL runs out after
    # asked_at + SHORT_TTL; it fetched before the inspect returned, so by fetched_by + TTL.
    asked_at = time.monotonic()
    assert sha256(inspect_raw(skopeo, site, reference).stdout) == images.app.manifest_digest
    fetched_by = time.monotonic()
    upstream.push(skopeo, images.layout, "2.0", repository, "latest")
    # Counted after the push, which may ask for the tag itself.
    gets, heads = upstream.count("GET", tag_path), upstream.count("HEAD", tag_path)

    still = inspect_raw(skopeo, site, reference).stdout
    assert time.monotonic() - asked_at < SHORT_TTL, "too slow to check 'before the TTL'"
    assert sha256(still) == images.app.manifest_digest
    assert (upstream.count("GET", tag_path), upstream.count("HEAD", tag_path)) == (gets, heads)

    time.sleep(max(0.0, fetched_by + SHORT_TTL + 0.5 - time.monotonic()))
    moved = inspect_raw(skopeo, site, reference).stdout
    assert sha256(moved) == images.other.manifest_digest
    # Revalidated with a HEAD (the digest changed, so the new manifest is fetched too).
    assert upstream.count("HEAD", tag_path) > heads
    pull(skopeo, site, reference, tmp_path / "moved")
    assert read_tagged(tmp_path / "moved", "latest")["digest"] == images.other.manifest_digest


def test_concurrent_pulls_of_an_uncached_layer_fetch_it_from_the_upstream_once(
    site, skopeo, upstream, images
):
    name = create_mirror(site, upstream.url, "--visibility", "public")
    layer = images.big.layer_digests[0]
    # The manifest first, so the clients race on the blob alone.
    assert (
        sha256(inspect_raw(skopeo, site, f"{name}/big/app:1.0").stdout)
        == images.big.manifest_digest
    )
    before = upstream.blob_gets("big/app", layer)
    barrier = threading.Barrier(CONCURRENT_CLIENTS)

    def fetch(_):
        barrier.wait(timeout=30)
        return blob_digest(site, f"/v2/{name}/big/app/blobs/{layer}", site.alice)

    with ThreadPoolExecutor(CONCURRENT_CLIENTS) as pool:
        results = list(pool.map(fetch, range(CONCURRENT_CLIENTS)))
    assert results == [(200, layer)] * CONCURRENT_CLIENTS
    assert upstream.blob_gets("big/app", layer) - before == 1
    # And the cached copy is whole.
    assert blob_digest(site, f"/v2/{name}/big/app/blobs/{layer}", site.bob) == (200, layer)
    assert upstream.blob_gets("big/app", layer) - before == 1


def test_a_blob_that_does_not_match_its_digest_is_refused(site, skopeo, tmp_path):
    with lying_upstream(tmp_path / "liar") as liar:
        name = create_mirror(site, liar.url, "--visibility", "public")
        reference = f"{name}/{liar.repository}:{liar.tag}"
        # The manifest is honest and comes through: the mirror does reach the liar.
        raw = inspect_raw(skopeo, site, reference).stdout
        assert sha256(raw) == liar.image.manifest_digest

        failed = pull(skopeo, site, reference, tmp_path / "first", check=False)
        assert failed.returncode != 0, failed.stdout
        assert liar.blob_gets(liar.repository, liar.layer_digest) >= 1

        bad = sha256(liar.blobs[liar.layer_digest])
        path = f"/v2/{name}/{liar.repository}/blobs/{liar.layer_digest}"
        for _ in range(2):
            status, digest = blob_digest(site, path, site.alice)
            # Refused, or cut short: never the lie in full, nor a 200 with other bytes.
            assert not (status == 200 and digest is not None), (status, digest)
            assert digest != bad
        again = pull(skopeo, site, reference, tmp_path / "second", check=False)
        assert again.returncode != 0


def test_push_to_a_mirror_is_denied(site, skopeo, upstream, images):
    name = create_mirror(site, upstream.url, "--visibility", "public")
    for creds in (site.alice, ADMIN):
        refused = skopeo(
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            creds.joined,
            f"oci:{images.layout}:1.0",
            f"docker://{site.host}/{name}/library/app:pushed",
            check=False,
        )
        assert refused.returncode != 0
        assert "denied" in refused.stderr.lower(), refused.stderr


def test_a_private_mirror_serves_only_those_who_may_see_it(
    site, skopeo, upstream, images, tmp_path
):
    name = create_mirror(site, upstream.url, "--visibility", "private")
    reference = f"{name}/library/app:1.0"
    manifest_path = f"/v2/{name}/library/app/manifests/1.0"
    manifests = r"/v2/library/app/manifests/.+"

    def asked_upstream() -> int:
        return upstream.count("GET", manifests) + upstream.count("HEAD", manifests)

    asked = asked_upstream()

    assert get(site, manifest_path)[0] == 401
    assert get(site, manifest_path, site.bob)[0] in (403, 404)
    assert pull(skopeo, site, reference, tmp_path / "anonymous", check=False).returncode != 0
    assert (
        pull(skopeo, site, reference, tmp_path / "bob", creds=site.bob, check=False).returncode != 0
    )
    # Refused before the mirror asks its upstream: strangers cannot make it fetch.
    assert asked_upstream() == asked

    pull(skopeo, site, reference, tmp_path / "admin", creds=ADMIN)
    assert_pulled(tmp_path / "admin", "1.0", images.app, images.layout)


def test_an_htpasswd_upstream_needs_the_mirror_credentials(site, skopeo, images, tmp_path):
    with running_distribution(tmp_path / "upstream", credentials=UPSTREAM_CREDS) as own:
        own.push(skopeo, images.layout, "1.0", "team/app", "1.0")
        with_creds = create_mirror(
            site,
            own.url,
            "--visibility",
            "public",
            "--username",
            UPSTREAM_CREDS.username,
            "--password",
            UPSTREAM_CREDS.password,
        )
        pull(skopeo, site, f"{with_creds}/team/app:1.0", tmp_path / "good")
        assert_pulled(tmp_path / "good", "1.0", images.app, images.layout)

        without = create_mirror(site, own.url, "--visibility", "public")
        asked = manifest_requests(own)
        failed = pull(skopeo, site, f"{without}/team/app:1.0", tmp_path / "bad", check=False)
        assert failed.returncode != 0
        status, body = get(site, f"/v2/{without}/team/app/manifests/1.0", ADMIN)
        assert status >= 400
        # Clearly: the error says it is the upstream that refused.
        text = error_text(body)
        assert own.host in text or "upstream" in text.lower(), text
        # It did ask (and was refused): the failure is the missing credentials.
        assert manifest_requests(own) > asked
        assert "credentials" in text


def manifest_requests(upstream) -> int:
    """The requests for team/app:1.0 the upstream saw: a mirror asks with a HEAD first."""
    path = r"/v2/team/app/manifests/1\.0"
    return upstream.count("GET", path) + upstream.count("HEAD", path)


def test_another_forge_is_an_upstream_through_its_token_flow(
    site, skopeo, start_forge, images, tmp_path
):
    other = start_forge(name="upstream-forge")
    # Our /v2/ challenges with Bearer: the mirror must follow the token flow.
    challenge = other.request("GET", "/v2/")
    assert challenge.status == 401
    assert challenge.headers["WWW-Authenticate"].startswith("Bearer ")
    carol = Credentials("carol", "carol-pw")
    other.manage(
        "createuser", carol.username, "--password", carol.password, "--visibility", "private"
    )
    for creds, repository in ((other.alice, "alice/shared/app"), (carol, "carol/secret")):
        skopeo(
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-creds",
            creds.joined,
            f"oci:{images.layout}:1.0",
            f"docker://{other.host}/{repository}:1.0",
        )

    anonymous = create_mirror(site, other.url, "--visibility", "public")
    pull(skopeo, site, f"{anonymous}/alice/shared/app:1.0", tmp_path / "public")
    assert_pulled(tmp_path / "public", "1.0", images.app, images.layout)
    hidden = pull(skopeo, site, f"{anonymous}/carol/secret:1.0", tmp_path / "hidden", check=False)
    assert hidden.returncode != 0

    signed_in = create_mirror(
        site,
        other.url,
        "--visibility",
        "public",
        "--username",
        carol.username,
        "--password",
        carol.password,
    )
    pull(skopeo, site, f"{signed_in}/carol/secret:1.0", tmp_path / "private")
    assert_pulled(tmp_path / "private", "1.0", images.app, images.layout)


def test_a_multi_arch_index_mirrors_and_fetches_a_platform_on_demand(
    site, skopeo, upstream, images, tmp_path
):
    name = create_mirror(site, upstream.url, "--visibility", "public")
    reference = f"{name}/multi/app:1"
    arm = images.multi.children[("linux", "arm64")]
    amd = images.multi.children[("linux", "amd64")]
    blobs = [arm.config_digest, *arm.layer_digests, amd.config_digest, *amd.layer_digests]
    before = {digest: upstream.blob_gets("multi/app", digest) for digest in blobs}

    assert sha256(inspect_raw(skopeo, site, reference).stdout) == images.multi.index_digest
    pull(
        skopeo,
        site,
        reference,
        tmp_path / "arm",
        extra=("--override-os", "linux", "--override-arch", "arm64"),
    )
    assert_pulled(tmp_path / "arm", "1", arm, images.layout)
    fetched = {digest: upstream.blob_gets("multi/app", digest) - before[digest] for digest in blobs}
    assert fetched == {
        **dict.fromkeys([arm.config_digest, *arm.layer_digests], 1),
        **dict.fromkeys([amd.config_digest, *amd.layer_digests], 0),
    }

    skopeo(
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        f"docker://{site.host}/{reference}",
        f"oci:{tmp_path / 'all'}:all",
    )
    assert read_tagged(tmp_path / "all", "all")["digest"] == images.multi.index_digest
    for child in (arm, amd):
        for digest in [child.manifest_digest, child.config_digest, *child.layer_digests]:
            assert read_blob(tmp_path / "all", digest) == read_blob(images.layout, digest)
