"""Access tokens with real clients: podman and skopeo sign in with one as the password.

The tokens are made with `manage.py createtoken` against the live server's database,
as an operator would. podman and skopeo meet the Bearer challenge and go through
`GET /v2/token` with the access token as their Basic password.
"""

import hashlib
import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from .conftest import Credentials
from .layouts import make_image
from .test_podman import LOCAL_NAME, inspect, push_and_pull_back

# One line of gunicorn's access log: host, ident, Basic user name (or -), time, request
# line, status.
ACCESS_LINE = re.compile(
    r'^\S+ \S+ (?P<user>\S+) \[[^\]]*\] "(?P<method>[A-Z]+) (?P<target>\S+) HTTP/[\d.]+" '
    r"(?P<status>\d{3}) "
)


@pytest.fixture(scope="module")
def own_server(live_registry):
    if live_registry.external:
        pytest.skip("E2E_REGISTRY_URL is set: access tokens need our own server")
    return live_registry


def create_token(registry, name: str, scopes: str) -> Credentials:
    """alice's new access token, made by `manage.py createtoken`, as her credentials."""
    secret = registry.manage("createtoken", "alice", "--name", name, "--scope", scopes).strip()
    assert secret.startswith("fgt_"), secret
    return Credentials("alice", secret)


@pytest.fixture(scope="module")
def write_token(own_server) -> Credentials:
    return create_token(own_server, "e2e", "read:package,write:package")


@pytest.fixture(scope="module")
def read_token(own_server) -> Credentials:
    return create_token(own_server, "e2e-read", "read:package")


def login(podman, registry, creds: Credentials) -> None:
    podman("login", "--tls-verify=false", "-u", creds.username, "-p", creds.password, registry.host)


@pytest.fixture
def built_image(podman, tmp_path):
    """A FROM-scratch image with one COPY layer, built fresh into an empty store."""
    podman("rmi", "--all", "--force")
    context = tmp_path / "context"
    context.mkdir()
    (context / "token.txt").write_text("pushed with an access token\n")
    (context / "Containerfile").write_text("FROM scratch\nCOPY token.txt /token.txt\n")
    podman("build", "--format", "oci", "-t", LOCAL_NAME, str(context), timeout=300)
    return inspect(podman, LOCAL_NAME)


def tags_of(registry, repository: str) -> list[str]:
    response = registry.request("GET", f"/v2/{repository}/tags/list", creds=registry.alice)
    assert response.status == 200, response.body
    return json.loads(response.body)["tags"]


def test_podman_signs_in_with_an_access_token_and_pushes_and_pulls(
    podman, own_server, write_token, built_image, tmp_path
):
    login(podman, own_server, write_token)

    target = f"{own_server.host}/alice/tokens/hello:v1"
    push_and_pull_back(podman, built_image, target, tmp_path)

    assert tags_of(own_server, "alice/tokens/hello") == ["v1"]


def test_a_read_only_token_signs_in_and_pulls_but_cannot_push(
    podman, own_server, read_token, built_image
):
    pullable = f"{own_server.host}/alice/tokens/readonly:v1"
    login(podman, own_server, own_server.alice)
    podman("push", "--tls-verify=false", LOCAL_NAME, pullable)

    login(podman, own_server, read_token)
    # A repository without the blobs, so the refusal comes at the first blob upload.
    refused = podman(
        "push",
        "--tls-verify=false",
        LOCAL_NAME,
        f"{own_server.host}/alice/tokens/denied:v1",
        check=False,
    )

    assert refused.returncode != 0, refused.stdout
    assert re.search(r"denied|unauthorized", refused.stderr, re.IGNORECASE), refused.stderr
    nothing = own_server.request("GET", "/v2/alice/tokens/denied/tags/list", creds=own_server.alice)
    assert nothing.status == 404, nothing.body
    podman("rmi", "--all", "--force")
    podman("pull", "--tls-verify=false", pullable)
    assert inspect(podman, pullable)["Id"] == built_image["Id"]


def test_skopeo_copies_with_an_access_token_as_dest_creds(
    skopeo, own_server, write_token, tmp_path
):
    layout = tmp_path / "layout"
    info = make_image(layout, "1.0", layers=[{"token.txt": b"copied with a token\n"}])
    reference = f"docker://{own_server.host}/alice/tokens/skopeo:1.0"

    skopeo(
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--dest-creds",
        f"alice:{write_token.password}",
        f"oci:{layout}:1.0",
        reference,
    )

    raw = skopeo(
        "inspect", "--raw", "--tls-verify=false", "--creds", write_token.joined, reference,
        binary=True,
    ).stdout  # fmt: skip
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == info.manifest_digest


def access_log_since(registry, offset: int, *, until: str = "", wait: float = 10.0):
    """The access log's requests since `offset`. A worker writes a request's line after
    sending its answer, so the client may be done first: with `until`, wait (at most
    `wait` seconds) for a line whose target is that.
    """
    deadline = time.monotonic() + wait
    while True:
        with registry.log_path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", "replace")
        lines = [m.groupdict() for m in map(ACCESS_LINE.match, text.splitlines()) if m]
        if not until or any(r["target"] == until for r in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def scopes_of(target: str) -> list[str]:
    query = parse_qs(urlsplit(target).query)
    return [scope for value in query.get("scope", []) for scope in value.split()]


def test_podman_push_goes_through_the_token_endpoint(podman, own_server, write_token, built_image):
    login(podman, own_server, write_token)
    offset = own_server.log_path.stat().st_size

    podman("push", "--tls-verify=false", LOCAL_NAME, f"{own_server.host}/alice/tokens/bearer:v1")

    requests = access_log_since(own_server, offset, until="/v2/alice/tokens/bearer/manifests/v1")
    token_requests = [r for r in requests if urlsplit(r["target"]).path == "/v2/token"]
    assert token_requests, requests
    # podman asked, with the access token as alice's password, for push on the image...
    pushes = [
        r
        for r in token_requests
        for scope in scopes_of(r["target"])
        if scope.startswith("repository:alice/tokens/bearer:")
        and "push" in scope.rpartition(":")[2].split(",")
    ]
    assert pushes, token_requests
    assert all(r["status"] == "200" and r["user"] == "alice" for r in pushes), pushes
    # ...and then pushed with the Bearer token it got (no Basic user name on the request).
    manifest_puts = [
        r
        for r in requests
        if r["method"] == "PUT" and r["target"] == "/v2/alice/tokens/bearer/manifests/v1"
    ]
    assert manifest_puts, requests
    assert manifest_puts[-1]["status"] == "201", manifest_puts
    assert manifest_puts[-1]["user"] == "-", manifest_puts
