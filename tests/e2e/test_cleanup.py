"""Cleanup end to end: skopeo pushes, a tag is deleted, `cleanup_packages` frees the disk.

The module runs a forge site of its own (`start_forge`: its own database and data dir),
so the disk usage it measures is exactly what its pushes and cleanups did, and running
cleanup with no grace period there cannot disturb what other modules left on the
shared server.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

import pytest
from django.template.defaultfilters import filesizeformat

from .layouts import make_image, read_tagged

MiB = 1024 * 1024


def blob_file(site, digest: str) -> Path:
    """Where the site's file-system store keeps a blob: blobs/sha256/<ab>/<hex>."""
    hex_digest = digest.split(":", 1)[1]
    return site.data_dir / "packages" / "blobs" / "sha256" / hex_digest[:2] / hex_digest


def disk_usage(site) -> int:
    """Bytes in the files under the site's blob storage."""
    root = site.data_dir / "packages" / "blobs"
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


def random_files(seed: int, size: int) -> dict[str, bytes]:
    """One incompressible file of `size` bytes, the same for the same seed."""
    return {f"data/blob-{seed}.bin": random.Random(seed).randbytes(size)}


def image_blobs(info) -> dict[str, int]:
    """digest -> size of everything a push stores: config, layers and the manifest."""
    return {
        descriptor.digest: descriptor.size
        for descriptor in [info.manifest, info.config, *info.layers]
    }


def summary_figures(output: str) -> tuple[int, str]:
    """The blob count and the bytes freed of cleanup_packages's summary line."""
    match = re.search(r"(\d+) blobs? (?:would be )?removed, (.+?) (?:would be )?freed", output)
    assert match is not None, output
    return int(match[1]), match[2]


@pytest.fixture(scope="module")
def site(start_forge):
    return start_forge(name="cleanup")


def push(skopeo, site, layout: Path, tag: str, repository: str) -> None:
    skopeo(
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--dest-creds",
        site.alice.joined,
        f"oci:{layout}:{tag}",
        f"docker://{site.host}/{repository}:{tag}",
    )


def test_cleanup_after_a_tag_is_deleted_frees_its_blobs_on_disk_and_keeps_shared_ones(
    skopeo, site, tmp_path
):
    shared = random_files(1, 1 * MiB)
    keeper = make_image(
        tmp_path / "keeper", "1.0", layers=[shared, random_files(2, MiB // 2)], gzip=False
    )
    doomed = make_image(
        tmp_path / "doomed",
        "1.0",
        layers=[random_files(3, 2 * MiB), shared, random_files(4, 3 * MiB)],
        gzip=False,
    )
    push(skopeo, site, tmp_path / "keeper", "1.0", "alice/cleanup/keeper")
    before = disk_usage(site)

    push(skopeo, site, tmp_path / "doomed", "1.0", "alice/cleanup/doomed")
    kept = image_blobs(keeper)
    only_doomed = {
        digest: size for digest, size in image_blobs(doomed).items() if digest not in kept
    }
    assert len(only_doomed) == 4  # manifest, config and two layers of its own
    assert all(blob_file(site, digest).is_file() for digest in [*kept, *only_doomed])
    assert disk_usage(site) == before + sum(only_doomed.values())

    skopeo(
        "delete",
        "--tls-verify=false",
        "--creds",
        site.alice.joined,
        f"docker://{site.host}/alice/cleanup/doomed:1.0",
    )
    gone = site.request("GET", "/v2/alice/cleanup/doomed/manifests/1.0", creds=site.alice)
    assert gone.status == 404, gone.body

    # Within the default grace period (24h) nothing is collected yet.
    count, _ = summary_figures(site.manage("cleanup_packages"))
    assert count == 0
    assert disk_usage(site) == before + sum(only_doomed.values())

    # A dry run names exactly what would go, and removes nothing.
    dry = site.manage("cleanup_packages", "--dry-run", "--older-than", "0s")
    assert dry.startswith("Dry run: "), dry
    count, freed = summary_figures(dry)
    assert count == len(only_doomed), dry
    assert freed == filesizeformat(sum(only_doomed.values())).replace("\xa0", " "), dry
    assert all(blob_file(site, digest).is_file() for digest in only_doomed)
    assert disk_usage(site) == before + sum(only_doomed.values())

    done = site.manage("cleanup_packages", "--older-than", "0s")
    count, freed = summary_figures(done)
    assert count == len(only_doomed), done
    assert freed == filesizeformat(sum(only_doomed.values())).replace("\xa0", " "), done
    assert [digest for digest in only_doomed if blob_file(site, digest).exists()] == []
    assert all(blob_file(site, digest).is_file() for digest in kept)
    assert disk_usage(site) == before

    # The image that shares a layer with the deleted one still pulls, byte for byte.
    pulled = tmp_path / "pulled"
    skopeo(
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        "--src-creds",
        site.alice.joined,
        f"docker://{site.host}/alice/cleanup/keeper:1.0",
        f"oci:{pulled}:1.0",
    )
    assert read_tagged(pulled, "1.0")["digest"] == keeper.manifest_digest
    manifest = json.loads((pulled / "blobs" / "sha256" / keeper.manifest_digest[7:]).read_bytes())
    assert [layer["digest"] for layer in manifest["layers"]] == keeper.layer_digests
    for digest in [keeper.config_digest, *keeper.layer_digests]:
        data = (pulled / "blobs" / "sha256" / digest[7:]).read_bytes()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == digest

    # Nothing left to do: a second run finds nothing.
    count, _ = summary_figures(site.manage("cleanup_packages", "--older-than", "0s"))
    assert count == 0
