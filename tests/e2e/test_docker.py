"""The docker CLI and engine build, sign in, push, pull and sign out against the registry.

The engine is Debian's `docker.io` dockerd, started by the module's fixture with state,
socket and config of its own (tests/e2e/dockerd.py). Every test gets a docker client
with its own DOCKER_CONFIG, so no credentials of the machine's are read or written and
no test sees another's login. 127.0.0.0/8 is an insecure registry to docker by default:
no daemon flag is needed for plain HTTP.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ci import unavailable

from .conftest import Credentials, Tool, require_tool
from .dockerd import DockerdDidNotStart, running_dockerd
from .test_tokens import create_token
from .upstreams import running_distribution

DOCKER_V2S2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MANIFEST_ACCEPT = f"{DOCKER_V2S2}, {OCI_MANIFEST}"
# What `docker push` prints once the manifest is in: "<tag>: digest: sha256:… size: N".
PUSHED = re.compile(r"^\S+: digest: (?P<digest>sha256:[0-9a-f]{64}) size: \d+$", re.MULTILINE)
# What `docker pull` prints: "Digest: sha256:…".
PULLED = re.compile(r"^Digest: (?P<digest>sha256:[0-9a-f]{64})$", re.MULTILINE)
# Variables of the caller's that would point the client at another engine or config.
DOCKER_ENV_DROPPED = ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")
DOCKER_ORG = "docker-org"


@pytest.fixture(scope="module")
def own_server(live_registry):
    if live_registry.external:
        pytest.skip("E2E_REGISTRY_URL is set: these tests sign in as seeded users and tokens")
    return live_registry


@pytest.fixture(scope="module")
def engine(own_server, tmp_path_factory):
    """A dockerd of this module's own, stopped (with its containerd) when the module ends."""
    binary = shutil.which("dockerd") or (
        "/usr/sbin/dockerd" if Path("/usr/sbin/dockerd").exists() else None
    )
    if binary is None:
        require_tool("dockerd")  # skips, or fails in CI, naming how to install it
    log_path = tmp_path_factory.mktemp("dockerd") / "dockerd.log"
    try:
        with running_dockerd(binary, log_path) as running:
            yield running
    except DockerdDidNotStart as exc:
        unavailable(f"the docker engine did not start: {exc}", "a docker engine that won't start")


@pytest.fixture
def docker(engine, own_server, tmp_path) -> Tool:
    """The docker CLI on this module's engine, with a client config of this test's own."""
    path = require_tool("docker")
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    (config_dir / "config.json").write_text('{"auths": {}}\n')
    env = {key: value for key, value in os.environ.items() if key not in DOCKER_ENV_DROPPED}
    env.update(
        {
            "DOCKER_HOST": engine.host,
            "DOCKER_CONFIG": str(config_dir),
            # The classic builder: Debian's docker.io has no buildx, and FROM scratch
            # + COPY needs nothing more.
            "DOCKER_BUILDKIT": "0",
            "TMPDIR": str(tmp_path),
        }
    )
    return Tool([path], env)


@pytest.fixture(scope="module")
def docker_org(own_server):
    """An organisation of alice's where bob may write (acme only lets him read)."""
    own_server.manage("createorg", DOCKER_ORG, "--owner", "alice")
    own_server.manage("addmember", DOCKER_ORG, "bob", "--role", "write")
    return DOCKER_ORG


@dataclass
class Built:
    name: str
    image_id: str


def saved_auths(docker: Tool) -> dict:
    """The registries the client config holds credentials for."""
    config = Path(docker.env["DOCKER_CONFIG"]) / "config.json"
    return json.loads(config.read_text()).get("auths", {})


def login(docker: Tool, registry, creds: Credentials) -> None:
    result = docker("login", "-u", creds.username, "-p", creds.password, registry.host)
    assert "Login Succeeded" in result.stdout, result.stdout
    assert registry.host in saved_auths(docker)


def empty_store(docker: Tool) -> None:
    """Remove every image from the engine, so a pull has to fetch every byte."""
    # prune, not rmi of every id: the classic builder leaves a parent image per step,
    # and rmi refuses a parent while its child is there.
    docker("image", "prune", "--all", "--force")
    assert docker("images", "--all", "--quiet").stdout.strip() == ""


def build(docker: Tool, tmp_path: Path, text: str) -> Built:
    """A FROM-scratch image with one COPY layer holding `text`, in an empty store."""
    empty_store(docker)
    context = tmp_path / "context"
    context.mkdir()
    (context / "hello.txt").write_text(text)
    (context / "Dockerfile").write_text(
        "FROM scratch\n"
        "COPY hello.txt /hello.txt\n"
        'LABEL org.opencontainers.image.description="e2e docker image"\n'
    )
    name = "e2e/docker-hello:built"
    docker("build", "--tag", name, str(context))
    return Built(name, inspect(docker, name, "{{.Id}}"))


def inspect(docker: Tool, name: str, template: str) -> str:
    return docker("image", "inspect", "--format", template, name).stdout.strip()


def push(docker: Tool, built: Built, target: str) -> str:
    """Tag `built` as `target` and push it; the digest docker says it pushed."""
    docker("tag", built.name, target)
    result = docker("push", target)
    match = PUSHED.search(result.stdout)
    assert match, result.stdout
    return match["digest"]


def registry_digest(registry, repository: str, tag: str) -> str:
    """The registry's Docker-Content-Digest for the tag, checked against the manifest's bytes."""
    path = f"/v2/{repository}/manifests/{tag}"
    headers = {"Accept": MANIFEST_ACCEPT}
    response = registry.request("GET", path, creds=registry.alice, headers=headers)
    assert response.status == 200, response.body
    digest = response.headers["Docker-Content-Digest"]
    assert digest == "sha256:" + hashlib.sha256(response.body).hexdigest()
    # The engine pushes Docker's schema 2, and the registry keeps its media type.
    assert json.loads(response.body)["mediaType"] == DOCKER_V2S2
    assert response.headers["Content-Type"] == DOCKER_V2S2
    return digest


def push_and_pull_back(docker: Tool, registry, built: Built, repository: str, tag: str) -> str:
    """Push `built` to `repository:tag`, empty the engine, pull it back; the one digest
    that docker push printed, the registry answers and docker pull recorded.
    """
    target = f"{registry.host}/{repository}:{tag}"
    pushed = push(docker, built, target)
    assert registry_digest(registry, repository, tag) == pushed

    empty_store(docker)
    result = docker("pull", target)
    match = PULLED.search(result.stdout)
    assert match, result.stdout
    assert match["digest"] == pushed
    repo_digest = inspect(docker, target, "{{index .RepoDigests 0}}")
    assert repo_digest == f"{registry.host}/{repository}@{pushed}"
    # The config blob came back byte for byte: the image ID is its digest.
    assert inspect(docker, target, "{{.Id}}") == built.image_id
    label = inspect(
        docker, target, '{{index .Config.Labels "org.opencontainers.image.description"}}'
    )
    assert label == "e2e docker image"
    return pushed


def tag_is_absent(registry, repository: str) -> bool:
    response = registry.request("GET", f"/v2/{repository}/tags/list", creds=registry.alice)
    return response.status == 404


def test_docker_signs_in_with_a_password_builds_pushes_and_pulls_the_same_digest(
    docker, own_server, tmp_path
):
    login(docker, own_server, own_server.alice)
    built = build(docker, tmp_path, "hello from docker\n")

    push_and_pull_back(docker, own_server, built, "alice/docker/hello", "v1")


def test_docker_signs_in_with_an_access_token_and_pushes_and_pulls(docker, own_server, tmp_path):
    token = create_token(own_server, "e2e-docker", "read:package,write:package")
    login(docker, own_server, token)
    built = build(docker, tmp_path, "pushed by docker with an access token\n")

    push_and_pull_back(docker, own_server, built, "alice/docker/token", "v1")


def test_an_organisation_member_with_write_pushes_to_the_organisation(
    docker, own_server, docker_org, tmp_path
):
    login(docker, own_server, own_server.bob)
    built = build(docker, tmp_path, "pushed by docker to an organisation\n")

    push_and_pull_back(docker, own_server, built, f"{docker_org}/tools", "1.0")


def test_an_organisation_member_who_may_only_read_cannot_push(docker, own_server, tmp_path):
    login(docker, own_server, own_server.bob)  # a read member of acme
    built = build(docker, tmp_path, "refused: bob only reads acme\n")

    docker("tag", built.name, f"{own_server.host}/acme/docker-denied:1")
    refused = docker("push", f"{own_server.host}/acme/docker-denied:1", check=False)

    assert refused.returncode != 0, refused.stdout
    assert "denied" in refused.stderr.lower(), refused.stderr
    assert tag_is_absent(own_server, "acme/docker-denied")


def test_a_read_only_token_signs_in_but_its_push_is_denied(docker, own_server, tmp_path):
    token = create_token(own_server, "e2e-docker-read", "read:package")
    login(docker, own_server, token)
    built = build(docker, tmp_path, "refused: the token only reads\n")

    target = f"{own_server.host}/alice/docker/denied:v1"
    docker("tag", built.name, target)
    refused = docker("push", target, check=False)

    assert refused.returncode != 0, refused.stdout
    assert "denied" in refused.stderr.lower(), refused.stderr
    assert tag_is_absent(own_server, "alice/docker/denied")


def test_docker_logout_forgets_the_credentials_and_a_push_needs_them_again(
    docker, own_server, tmp_path
):
    login(docker, own_server, own_server.alice)
    built = build(docker, tmp_path, "pushed after signing out\n")

    result = docker("logout", own_server.host)

    assert f"Removing login credentials for {own_server.host}" in result.stdout, result.stdout
    assert own_server.host not in saved_auths(docker)
    target = f"{own_server.host}/alice/docker/after-logout:v1"
    docker("tag", built.name, target)
    refused = docker("push", target, check=False)
    assert refused.returncode != 0, refused.stdout
    # The whole error, not the bare code "unauthorized": docker retries a push for ~50 s
    # after a 401 it can only read as a bare code (registry/access.py, access_needed).
    assert "unauthorized: authentication required" in refused.stderr, refused.stderr
    assert tag_is_absent(own_server, "alice/docker/after-logout")


def test_docker_pulls_through_a_mirror_and_again_with_the_upstream_down(
    docker, start_forge, tmp_path
):
    """docker's engine pulls an image it pushed to CNCF Distribution through a mirror of
    it (docs/mirrors.md): the digest and image ID it pushed, and again once Distribution
    is stopped, from the mirror's cache alone.
    """
    site = start_forge({"FORGE_MIRROR_ALLOWED_HOSTS": "127.0.0.1"}, name="docker-mirror")
    built = build(docker, tmp_path, "hello through a mirror\n")
    with running_distribution(tmp_path / "upstream") as upstream:
        pushed = push(docker, built, f"{upstream.host}/team/app:v1")
        site.manage("createmirror", "hub", "--upstream", upstream.url)
        target = f"{site.host}/hub/team/app:v1"

        empty_store(docker)
        assert PULLED.search(docker("pull", target).stdout)["digest"] == pushed
        assert inspect(docker, target, "{{.Id}}") == built.image_id

        upstream.stop()
        empty_store(docker)
        assert PULLED.search(docker("pull", target).stdout)["digest"] == pushed
        assert inspect(docker, target, "{{.Id}}") == built.image_id
