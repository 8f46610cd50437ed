"""An existing site upgrades in place: a database made by the previous release migrates.

The previous release's tree comes out of git (`git archive`), makes a database (SQLite,
or a fresh PostgreSQL database when DATABASE_URL points at one) with its own
`migrate`, adds a user and pushes an image through its own /v2 views; then this tree's
`migrate` runs on the same database and data dir, and this tree serves the image.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

from .conftest import REPO_ROOT, describe, fresh_postgres_database

# The last commit before the apps were split (issue 15): the pages and the REST API
# inside `registry`, the shared cache's settings under REGISTRY. Move it forward with
# each release that changes migrations or app labels.
PREVIOUS_RELEASE = "81a1d906e40e7ae3953cc77b113e20a6dad15799"

# Run by each tree's `manage.py shell`: push with the /v2 views, through Django's test
# client (the views under test here are the migrations, not the wire).
PUSH = textwrap.dedent(
    """
    import base64, hashlib, json
    from django.test import Client
    auth = "Basic " + base64.b64encode(b"alice:alice-pw-123").decode()
    client = Client(HTTP_AUTHORIZATION=auth, HTTP_HOST="127.0.0.1")
    def blob(data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        start = client.post("/v2/alice/app/blobs/uploads/")
        assert start.status_code == 202, start.content
        done = client.put(
            start["Location"] + ("&" if "?" in start["Location"] else "?") + "digest=" + digest,
            data=data, content_type="application/octet-stream",
        )
        assert done.status_code == 201, done.content
        return {"digest": digest, "size": len(data)}
    config = blob(b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}')
    layer = blob(b"a layer made by the previous release")
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}],
    }).encode()
    put = client.put("/v2/alice/app/manifests/1.0", data=manifest,
                     content_type="application/vnd.oci.image.manifest.v1+json")
    assert put.status_code == 201, put.content
    print("pushed", put["Docker-Content-Digest"])
    """
)

PULL = textwrap.dedent(
    """
    import base64
    from django.test import Client
    auth = "Basic " + base64.b64encode(b"alice:alice-pw-123").decode()
    client = Client(HTTP_AUTHORIZATION=auth, HTTP_HOST="127.0.0.1")
    manifest = client.get("/v2/alice/app/manifests/1.0",
                          HTTP_ACCEPT="application/vnd.oci.image.manifest.v1+json")
    assert manifest.status_code == 200, manifest.content
    layer = manifest.json()["layers"][0]["digest"]
    pulled = client.get(f"/v2/alice/app/blobs/{layer}")
    body = b"".join(pulled.streaming_content) if pulled.streaming else pulled.content
    assert body == b"a layer made by the previous release", (pulled.status_code, body[:200])
    listed = client.get("/api/v1/packages/alice")
    assert [p["name"] for p in listed.json()["results"]] == ["app"], listed.content
    print("pulled", manifest["Docker-Content-Digest"])
    """
)


@contextlib.contextmanager
def database_url():
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        with fresh_postgres_database(url) as fresh:
            yield fresh
    else:
        yield ""  # SQLite in the data dir


def previous_release(directory: Path) -> Path:
    archive = directory / "previous.tar"
    result = subprocess.run(
        ["git", "archive", "--format=tar", "-o", str(archive), PREVIOUS_RELEASE],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"the previous release {PREVIOUS_RELEASE[:10]} is not in this clone's history "
            f"(a shallow clone?)\n{describe(result)}"
        )
    tree = directory / "previous"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def test_a_database_made_by_the_previous_release_migrates_and_serves(tmp_path):
    tree = previous_release(tmp_path)
    data_dir = tmp_path / "data"
    with database_url() as url:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "FORGE_")) and key != "PYTHONPATH"
        }
        env.update(FORGE_DATA_DIR=str(data_dir), FORGE_SECRET_KEY="upgrade-test-" + "k" * 40)
        if url:
            env["DATABASE_URL"] = url
        else:
            env.pop("DATABASE_URL", None)

        def manage(root: Path, *args: str) -> str:
            result = subprocess.run(
                [sys.executable, "manage.py", *args],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                stdin=subprocess.DEVNULL,
                check=False,
            )
            assert result.returncode == 0, describe(result)
            return result.stdout

        manage(tree, "migrate", "--no-input")
        manage(tree, "createuser", "alice", "--password", "alice-pw-123")
        pushed = manage(tree, "shell", "-c", PUSH).split()[-1]

        manage(REPO_ROOT, "migrate", "--no-input")
        # Nothing left to make, nothing left to apply: the history is one and the same.
        manage(REPO_ROOT, "makemigrations", "--check", "--dry-run")
        manage(REPO_ROOT, "migrate", "--check")
        pulled = manage(REPO_ROOT, "shell", "-c", PULL).split()[-1]

    assert pulled == pushed
