"""oras-py pushes artifacts in chunks, pulls them back and links them through `subject`."""

import functools
import hashlib
import json
import re

import pytest

SBOM_TYPE = "application/vnd.example.sbom"
SIGNATURE_TYPE = "application/vnd.example.signature"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
NO_REFERRERS = (
    "E2E_REGISTRY_URL is set: the external reference registry (Distribution 2.8) "
    "has no referrers API"
)

REQUEST_TIMEOUT = 120

# Small chunks so one artifact takes several PATCH requests, each with Content-Range.
CHUNK_SIZE = 64 * 1024
SBOM_BYTES = json.dumps({"packages": [f"pkg-{n}" for n in range(30000)]}).encode()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def docker_config(tmp_path_factory):
    """The credentials file oras-py's login writes and its push and pull read."""
    path = tmp_path_factory.mktemp("oras") / "config.json"
    path.write_text('{"auths": {}}')
    return str(path)


@pytest.fixture(scope="module")
def oras_client(oras, live_registry, docker_config):
    """An oras-py client for the registry, signed in as alice where there is auth.

    oras-py retries every failed request five times with 3 to 83 s pauses; a test of the
    server wants the first answer, so this client calls the undecorated request method,
    and every request has a timeout instead of none.
    """

    class Client(oras.client.OrasClient):
        do_request = oras.client.OrasClient.do_request.__wrapped__

    # oras-py's default auth backend: the Bearer token flow.
    client = Client(hostname=live_registry.host, insecure=True)
    client.session.request = functools.partial(client.session.request, timeout=REQUEST_TIMEOUT)
    creds = live_registry.alice
    if creds is not None:
        client.login(
            username=creds.username,
            password=creds.password,
            hostname=live_registry.host,
            config_path=docker_config,
        )
    return client


def test_ping_challenge_is_a_bearer_realm_oras_py_can_follow(live_registry):
    """oras-py's default (token) auth reads realm="..." as a URL and fetches a token there."""
    if live_registry.external:
        pytest.skip("E2E_REGISTRY_URL is set: the external reference registry has no auth")
    answer = live_registry.request("GET", "/v2/")
    assert answer.status == 401, (answer.status, answer.body[:500])
    challenge = answer.headers.get("WWW-Authenticate") or ""
    assert challenge.startswith("Bearer "), challenge
    realm = dict(re.findall(r'(\w+)="([^"]*)"', challenge)).get("realm", "")
    assert realm == f"{live_registry.url}/v2/token", challenge


def fetch_manifest(live_registry, repository, reference) -> bytes:
    response = live_registry.request(
        "GET",
        f"/v2/{repository}/manifests/{reference}",
        creds=live_registry.alice,
        headers={"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"},
    )
    assert response.status == 200, (response.status, response.body[:500])
    return response.body


@pytest.fixture(scope="module")
def sbom_artifact(oras_client, live_registry, docker_config, tmp_path_factory):
    """An SBOM file pushed in chunks to alice/artifacts:v1; its manifest's bytes and digest."""
    directory = tmp_path_factory.mktemp("sbom")
    path = directory / "sbom.json"
    path.write_bytes(SBOM_BYTES)
    config = directory / "config.json"
    config.write_bytes(b"{}")
    target = f"{live_registry.host}/alice/artifacts:v1"
    response = oras_client.push(
        target=target,
        files=[f"{path}:{SBOM_TYPE}+json"],
        manifest_config=f"{config}:{SBOM_TYPE}",
        disable_path_validation=True,
        do_chunked=True,
        chunk_size=CHUNK_SIZE,
        config_path=docker_config,
        quiet=True,
    )
    assert response.status_code == 201, (response.status_code, response.text)
    manifest_bytes = fetch_manifest(live_registry, "alice/artifacts", "v1")
    digest = sha256(manifest_bytes)
    assert response.headers.get("Docker-Content-Digest") == digest
    return {"target": target, "manifest": manifest_bytes, "digest": digest}


def test_chunked_artifact_push_pulls_back_byte_for_byte(
    oras_client, docker_config, sbom_artifact, tmp_path
):
    files = oras_client.pull(
        target=sbom_artifact["target"],
        outdir=str(tmp_path),
        config_path=docker_config,
    )
    assert [path.rsplit("/", 1)[-1] for path in files] == ["sbom.json"]
    assert (tmp_path / "sbom.json").read_bytes() == SBOM_BYTES

    manifest = json.loads(sbom_artifact["manifest"])
    assert manifest["config"]["mediaType"] == SBOM_TYPE
    (layer,) = manifest["layers"]
    assert layer["digest"] == sha256(SBOM_BYTES)
    assert layer["size"] == len(SBOM_BYTES) > 2 * CHUNK_SIZE
    assert layer["mediaType"] == f"{SBOM_TYPE}+json"


def test_get_tags_lists_the_pushed_artifact(oras_client, live_registry, sbom_artifact):
    tags = oras_client.get_tags(f"{live_registry.host}/alice/artifacts")
    assert "v1" in tags


def test_artifact_pushed_with_a_subject_is_listed_by_the_referrers_api(
    oras, oras_client, live_registry, docker_config, sbom_artifact, tmp_path
):
    signature = tmp_path / "signature.txt"
    config = tmp_path / "config.json"
    config.write_bytes(b"{}")
    signature.write_bytes(b"signed: " + sbom_artifact["digest"].encode())
    subject = oras.oci.Subject(
        mediaType=OCI_MANIFEST,
        digest=sbom_artifact["digest"],
        size=len(sbom_artifact["manifest"]),
    )
    response = oras_client.push(
        target=f"{live_registry.host}/alice/artifacts:v1-signature",
        files=[f"{signature}:{SIGNATURE_TYPE}"],
        manifest_config=f"{config}:{SIGNATURE_TYPE}",
        subject=subject,
        disable_path_validation=True,
        config_path=docker_config,
        quiet=True,
    )
    assert response.status_code == 201, (response.status_code, response.text)
    referrer_bytes = fetch_manifest(live_registry, "alice/artifacts", "v1-signature")
    referrer_digest = sha256(referrer_bytes)
    assert json.loads(referrer_bytes)["subject"]["digest"] == sbom_artifact["digest"]

    if live_registry.external:
        pytest.skip(NO_REFERRERS)

    # OCI 1.1: a registry that understands `subject` says so when the manifest is pushed.
    assert response.headers.get("OCI-Subject") == sbom_artifact["digest"]

    answer = live_registry.request(
        "GET",
        f"/v2/alice/artifacts/referrers/{sbom_artifact['digest']}",
        creds=live_registry.alice,
    )
    assert answer.status == 200, (answer.status, answer.body[:500])
    assert answer.headers.get_content_type() == OCI_INDEX
    index = json.loads(answer.body)
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == OCI_INDEX
    listed = {entry["digest"]: entry for entry in index["manifests"]}
    assert referrer_digest in listed, index
    entry = listed[referrer_digest]
    assert entry["mediaType"] == OCI_MANIFEST
    assert entry["size"] == len(referrer_bytes)
    # No artifactType in the manifest: the referrer's type is its config's media type.
    assert entry["artifactType"] == SIGNATURE_TYPE
    assert sbom_artifact["digest"] not in listed

    filtered = live_registry.request(
        "GET",
        f"/v2/alice/artifacts/referrers/{sbom_artifact['digest']}"
        "?artifactType=application/vnd.example.other",
        creds=live_registry.alice,
    )
    assert filtered.status == 200, (filtered.status, filtered.body[:500])
    if "artifactType" in (filtered.headers.get("OCI-Filters-Applied") or ""):
        assert json.loads(filtered.body)["manifests"] == []


def test_referrers_of_an_unknown_digest_is_an_empty_index(live_registry, sbom_artifact):
    if live_registry.external:
        pytest.skip(NO_REFERRERS)
    unknown = sha256(b"nothing refers to this")
    answer = live_registry.request(
        "GET", f"/v2/alice/artifacts/referrers/{unknown}", creds=live_registry.alice
    )
    assert answer.status == 200, (answer.status, answer.body[:500])
    index = json.loads(answer.body)
    assert index["mediaType"] == OCI_INDEX
    assert index["manifests"] == []
