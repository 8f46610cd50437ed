"""podman builds, logs in, pushes (chunked PATCH bodies) and pulls back from the registry."""

import json

import pytest

DOCKER_V2S2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LOCAL_NAME = "localhost/e2e/hello:v1"


@pytest.fixture(scope="module")
def logged_in(podman, live_registry):
    """podman signed in as alice (nothing to sign in to on an external registry)."""
    creds = live_registry.alice
    if creds is not None:
        podman(
            "login",
            "--tls-verify=false",
            "-u",
            creds.username,
            "-p",
            creds.password,
            live_registry.host,
        )
    return podman


def inspect(podman, name) -> dict:
    return json.loads(podman("image", "inspect", name).stdout)[0]


@pytest.fixture
def built_image(podman, tmp_path):
    """A FROM-scratch image with one COPY layer, built fresh into an empty store."""
    podman("rmi", "--all", "--force")
    context = tmp_path / "context"
    context.mkdir()
    (context / "hello.txt").write_text("hello from podman\n")
    (context / "Containerfile").write_text(
        "FROM scratch\n"
        "COPY hello.txt /hello.txt\n"
        'LABEL org.opencontainers.image.description="e2e podman image"\n'
    )
    podman("build", "--format", "oci", "-t", LOCAL_NAME, str(context), timeout=300)
    return inspect(podman, LOCAL_NAME)


def push_and_pull_back(podman, built, target, tmp_path, *push_args):
    """Push `built` to `target`, empty the store, pull `target` back; return both digests."""
    digest_file = tmp_path / "pushed-digest"
    podman(
        "push",
        "--tls-verify=false",
        "--digestfile",
        str(digest_file),
        *push_args,
        LOCAL_NAME,
        target,
    )
    pushed_digest = digest_file.read_text().strip()
    assert pushed_digest.startswith("sha256:"), pushed_digest

    podman("rmi", "--all", "--force")
    assert json.loads(podman("images", "--format", "json").stdout or "[]") == []

    podman("pull", "--tls-verify=false", target)
    pulled = inspect(podman, target)
    assert pulled["Digest"] == pushed_digest
    assert pulled["Id"] == built["Id"]  # the config blob came back byte for byte
    assert pulled["RootFS"]["Layers"] == built["RootFS"]["Layers"]
    repository = target.rsplit(":", 1)[0]
    assert f"{repository}@{pushed_digest}" in pulled["RepoDigests"]
    return pulled


def test_podman_push_of_a_built_image_pulls_back_identical(
    logged_in, live_registry, built_image, tmp_path
):
    target = f"{live_registry.host}/alice/podman/hello:v1"
    pulled = push_and_pull_back(logged_in, built_image, target, tmp_path)
    assert pulled["ManifestType"] == OCI_MANIFEST
    assert pulled["Labels"]["org.opencontainers.image.description"] == "e2e podman image"


def test_podman_push_in_docker_schema2_format_pulls_back_identical(
    logged_in, live_registry, built_image, tmp_path
):
    target = f"{live_registry.host}/alice/podman/hello:v1-v2s2"
    pulled = push_and_pull_back(logged_in, built_image, target, tmp_path, "--format", "v2s2")
    assert pulled["ManifestType"] == DOCKER_V2S2


def test_org_admin_pushes_to_the_organisation(logged_in, live_registry, built_image, tmp_path):
    target = f"{live_registry.host}/acme/tools:1"
    push_and_pull_back(logged_in, built_image, target, tmp_path)


def test_podman_lists_the_tags_of_a_pushed_repository(
    logged_in, live_registry, built_image, tmp_path
):
    target = f"{live_registry.host}/alice/podman/tagged:2.0"
    push_and_pull_back(logged_in, built_image, target, tmp_path)
    result = logged_in(
        "search",
        "--tls-verify=false",
        "--list-tags",
        "--format",
        "json",
        f"{live_registry.host}/alice/podman/tagged",
    )
    listing = json.loads(result.stdout)
    assert "2.0" in listing[0]["Tags"], listing
