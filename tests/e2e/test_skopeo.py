"""skopeo pushes OCI layouts to the live registry and copies them back unchanged."""

import hashlib
import json

import pytest

from .layouts import OCI_INDEX, OCI_MANIFEST, make_image, make_index, read_blob, read_tagged

NEEDS_AUTH = "E2E_REGISTRY_URL is set: the external reference registry has no authentication"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def creds_args(flag: str, creds) -> list[str]:
    """`--dest-creds alice:pw`, or nothing against an external registry without auth."""
    return [flag, creds.joined] if creds is not None else []


@pytest.fixture(scope="module")
def app_image(tmp_path_factory):
    """A three-layer, gzip-compressed image in an OCI layout."""
    directory = tmp_path_factory.mktemp("app-layout")
    info = make_image(
        directory,
        "1.0",
        layers=[
            {"etc/app/config.toml": b'name = "demo"\n'},
            {"usr/bin/app": b"#!/bin/sh\necho demo\n" + bytes(range(256)) * 64},
            {"srv/data/readme.txt": b"three layers\n", "srv/data/empty": b""},
        ],
    )
    return directory, info


@pytest.fixture(scope="module")
def pushed_app(skopeo, live_registry, app_image):
    """The app image pushed as alice to alice/demo/app:1.0, then copied to :1.1 in place."""
    directory, info = app_image
    reference = f"docker://{live_registry.host}/alice/demo/app"
    skopeo(
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        *creds_args("--dest-creds", live_registry.alice),
        f"oci:{directory}:1.0",
        f"{reference}:1.0",
    )
    skopeo(
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        *creds_args("--src-creds", live_registry.alice),
        *creds_args("--dest-creds", live_registry.alice),
        f"{reference}:1.0",
        f"{reference}:1.1",
    )
    return reference, info


def test_pushed_image_pulls_back_with_the_same_manifest_and_layer_digests(
    skopeo, live_registry, app_image, pushed_app, tmp_path
):
    directory, info = app_image
    reference, _ = pushed_app

    raw = skopeo(
        "inspect",
        "--raw",
        "--tls-verify=false",
        *creds_args("--creds", live_registry.alice),
        f"{reference}:1.0",
        binary=True,
    ).stdout
    assert sha256(raw) == info.manifest_digest, raw.decode(errors="replace")
    assert raw == read_blob(directory, info.manifest_digest)

    skopeo(
        "copy",
        "--src-tls-verify=false",
        *creds_args("--src-creds", live_registry.alice),
        f"{reference}:1.0",
        f"oci:{tmp_path}:pulled",
    )
    entry = read_tagged(tmp_path, "pulled")
    assert entry["digest"] == info.manifest_digest
    manifest = json.loads(read_blob(tmp_path, entry["digest"]))
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"]["digest"] == info.config_digest
    assert [layer["digest"] for layer in manifest["layers"]] == info.layer_digests
    for digest in [info.config_digest, *info.layer_digests]:
        pulled = read_blob(tmp_path, digest)
        assert sha256(pulled) == digest
        assert pulled == read_blob(directory, digest)


def test_image_copied_between_tags_in_the_registry_keeps_its_digest(
    skopeo, live_registry, pushed_app
):
    reference, info = pushed_app
    raw = skopeo(
        "inspect",
        "--raw",
        "--tls-verify=false",
        *creds_args("--creds", live_registry.alice),
        f"{reference}:1.1",
        binary=True,
    ).stdout
    assert sha256(raw) == info.manifest_digest


def test_uncompressed_layers_keep_their_digests_with_preserve_digests(
    skopeo, live_registry, tmp_path
):
    info = make_image(
        tmp_path / "layout", "raw", layers=[{"hello.txt": b"not gzipped\n"}], gzip=False
    )
    reference = f"docker://{live_registry.host}/alice/demo/raw:1.0"
    skopeo(
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        *creds_args("--dest-creds", live_registry.alice),
        f"oci:{tmp_path / 'layout'}:raw",
        reference,
    )
    raw = skopeo(
        "inspect",
        "--raw",
        "--tls-verify=false",
        *creds_args("--creds", live_registry.alice),
        reference,
        binary=True,
    ).stdout
    assert sha256(raw) == info.manifest_digest
    manifest = json.loads(raw)
    assert [layer["digest"] for layer in manifest["layers"]] == info.layer_digests
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar"


def test_multi_platform_index_round_trips_with_copy_all(skopeo, live_registry, tmp_path):
    source = tmp_path / "source"
    info = make_index(source, "latest")
    reference = f"docker://{live_registry.host}/alice/multi:latest"
    skopeo(
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        *creds_args("--dest-creds", live_registry.alice),
        f"oci:{source}:latest",
        reference,
    )

    raw_index = skopeo(
        "inspect",
        "--raw",
        "--tls-verify=false",
        *creds_args("--creds", live_registry.alice),
        reference,
        binary=True,
    ).stdout
    assert sha256(raw_index) == info.index_digest, raw_index.decode(errors="replace")

    pulled = tmp_path / "pulled"
    skopeo(
        "copy",
        "--all",
        "--src-tls-verify=false",
        *creds_args("--src-creds", live_registry.alice),
        reference,
        f"oci:{pulled}:latest",
    )
    entry = read_tagged(pulled, "latest")
    assert entry["digest"] == info.index_digest
    index = json.loads(read_blob(pulled, info.index_digest))
    assert index["mediaType"] == OCI_INDEX
    by_platform = {
        (child["platform"]["os"], child["platform"]["architecture"]): child
        for child in index["manifests"]
    }
    assert set(by_platform) == set(info.children)
    for platform, child_info in info.children.items():
        assert by_platform[platform]["digest"] == child_info.manifest_digest
        manifest_bytes = read_blob(pulled, child_info.manifest_digest)
        assert manifest_bytes == read_blob(source, child_info.manifest_digest)
        manifest = json.loads(manifest_bytes)
        assert [layer["digest"] for layer in manifest["layers"]] == child_info.layer_digests
        for digest in [child_info.config_digest, *child_info.layer_digests]:
            assert read_blob(pulled, digest) == read_blob(source, digest)
    amd64, arm64 = info.children[("linux", "amd64")], info.children[("linux", "arm64")]
    assert set(amd64.layer_digests) != set(arm64.layer_digests)


def test_list_tags_shows_the_pushed_tags(skopeo, live_registry, pushed_app):
    reference, _ = pushed_app
    result = skopeo(
        "list-tags",
        "--tls-verify=false",
        *creds_args("--creds", live_registry.alice),
        reference,
    )
    listing = json.loads(result.stdout)
    assert {"1.0", "1.1"} <= set(listing["Tags"]), listing


def test_anonymous_client_pulls_from_a_public_owner(skopeo, live_registry, pushed_app):
    reference, info = pushed_app
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"{reference}:1.0", binary=True).stdout
    assert sha256(raw) == info.manifest_digest
    listing = json.loads(
        skopeo("list-tags", "--tls-verify=false", reference).stdout  # anonymous too
    )
    assert "1.0" in listing["Tags"]


def assert_refused(result, *words):
    stderr = result.stderr.lower()
    assert result.returncode != 0, f"expected the push to be refused\n{result.stderr}"
    assert any(word in stderr for word in words), result.stderr


def test_user_cannot_push_to_another_users_namespace(skopeo, live_registry, app_image):
    if live_registry.external:
        pytest.skip(NEEDS_AUTH)
    directory, _ = app_image
    result = skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        live_registry.bob.joined,
        f"oci:{directory}:1.0",
        f"docker://{live_registry.host}/alice/demo/intruder:1.0",
        check=False,
    )
    assert_refused(result, "denied", "unauthorized")


def test_anonymous_client_cannot_push(skopeo, live_registry, app_image):
    if live_registry.external:
        pytest.skip(NEEDS_AUTH)
    directory, _ = app_image
    result = skopeo(
        "copy",
        "--dest-tls-verify=false",
        f"oci:{directory}:1.0",
        f"docker://{live_registry.host}/alice/demo/anonymous:1.0",
        check=False,
    )
    assert_refused(result, "denied", "unauthorized", "authentication required")


def test_read_member_of_an_organisation_cannot_push_there(skopeo, live_registry, app_image):
    if live_registry.external:
        pytest.skip(NEEDS_AUTH)
    directory, _ = app_image
    result = skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        live_registry.bob.joined,
        f"oci:{directory}:1.0",
        f"docker://{live_registry.host}/acme/readonly:1.0",
        check=False,
    )
    assert_refused(result, "denied", "unauthorized")


def test_deleting_a_platform_of_a_tagged_index_is_refused(skopeo, live_registry, tmp_path):
    """`skopeo delete` of a platform's digest leaves the multi-arch image whole (issue 16)."""
    if live_registry.external:
        pytest.skip("the refusal is this registry's; a reference registry may delete it")
    source = tmp_path / "source"
    info = make_index(source, "1.0")
    reference = f"docker://{live_registry.host}/alice/layoutapp"
    creds = creds_args("--creds", live_registry.alice)
    skopeo(
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        *creds_args("--dest-creds", live_registry.alice),
        f"oci:{source}:1.0",
        f"{reference}:1.0",
    )
    arm64_image = info.children[("linux", "arm64")]
    arm64 = arm64_image.manifest_digest

    refused = skopeo("delete", "--tls-verify=false", *creds, f"{reference}@{arm64}", check=False)

    assert refused.returncode != 0, refused.stdout
    assert "index 1.0" in refused.stderr, refused.stderr
    inspected = skopeo(
        "inspect",
        "--override-arch",
        "arm64",
        "--override-os",
        "linux",
        "--tls-verify=false",
        *creds,
        f"{reference}:1.0",
    )
    # skopeo reports the index's digest; the platform shows in what it resolved to.
    details = json.loads(inspected.stdout)
    assert details["Architecture"] == "arm64"
    assert details["Layers"] == arm64_image.layer_digests
