"""Webhooks end to end: skopeo pushes and deletes on a live server, the delivery worker
(`manage.py deliver_events`) runs as a process, and receivers on loopback get signed
events in both formats, one per tag.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time

import pytest

from tests.webhook_helpers import Receiver

from .conftest import REPO_ROOT, Tool, isolated_client_env, require_tool, stop_server
from .layouts import OCI_MANIFEST, make_image

GITEA_SECRET = "gitea-secret"
DISTRIBUTION_SECRET = "distribution-secret"
REPOSITORY = "alice/hooks/app"
WAIT_SECONDS = 30


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def site(start_forge, tmp_path_factory):
    """A site of its own (no other test's webhooks or cached lookups), two webhooks of
    alice's (one per format, each with its receiver) and the worker running beside it.
    """
    forge = start_forge({"FORGE_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"}, name="webhooks")
    gitea, distribution = Receiver(), Receiver()
    for receiver, secret, format_ in (
        (gitea, GITEA_SECRET, "gitea"),
        (distribution, DISTRIBUTION_SECRET, "distribution"),
    ):
        made = forge.manage(
            "createwebhook", "alice", "--url", receiver.url, "--secret", secret,
            "--format", format_,
        )  # fmt: skip
        assert made.strip().isdigit(), made
    log = (forge.data_dir / "deliver_events.log").open("ab")
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "deliver_events"],
        cwd=REPO_ROOT,
        env=forge.server_env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    path = require_tool("skopeo")
    skopeo = Tool(
        [path, "--insecure-policy"],
        isolated_client_env(tmp_path_factory.mktemp("skopeo-hooks"), forge.host),
    )
    try:
        yield forge, skopeo, gitea, distribution
    finally:
        stop_server(worker)
        log.close()
        gitea.close()
        distribution.close()


@pytest.fixture(scope="module")
def pushed(site, tmp_path_factory):
    """One image copied by skopeo to two tags of alice/hooks/app: its manifest's bytes."""
    forge, skopeo, _, _ = site
    layout = tmp_path_factory.mktemp("hooks-layout")
    info = make_image(layout, "1.0", layers=[{"app/hello.txt": b"hooked\n"}])
    reference = f"docker://{forge.host}/{REPOSITORY}"
    for tag in ("1.0", "1.1"):
        skopeo(
            "copy", "--preserve-digests", "--dest-tls-verify=false",
            "--dest-creds", forge.alice.joined, f"oci:{layout}:1.0", f"{reference}:{tag}",
        )  # fmt: skip
    raw = skopeo(
        "inspect", "--raw", "--tls-verify=false", "--creds", forge.alice.joined,
        f"{reference}:1.0", binary=True,
    ).stdout  # fmt: skip
    assert sha256(raw) == info.manifest_digest
    return raw


def wait_for(receiver: Receiver, event_type: str, count: int) -> list:
    deadline = time.monotonic() + WAIT_SECONDS
    while len(receiver.events(event_type)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return receiver.events(event_type)


def test_each_tag_skopeo_pushes_is_one_signed_distribution_push_event(site, pushed):
    forge, _, _, distribution = site
    got = wait_for(distribution, "push", 2)

    assert all(request.signed_with(DISTRIBUTION_SECRET) for request in got)
    assert not any(request.signed_with(GITEA_SECRET) for request in got)
    events = [request.json["events"][0] for request in got]
    assert sorted(event["target"]["tag"] for event in events) == ["1.0", "1.1"]
    for request, event in zip(got, events, strict=True):
        assert request.headers["X-Forge-Delivery"] == event["id"]
        assert event["action"] == "push"
        assert event["target"]["digest"] == sha256(pushed)
        assert event["target"]["size"] == len(pushed)
        assert event["target"]["mediaType"] == OCI_MANIFEST
        assert event["target"]["repository"] == REPOSITORY
        assert event["target"]["url"] == f"{forge.url}/v2/{REPOSITORY}/manifests/{sha256(pushed)}"
        assert event["actor"] == {"name": "alice"}
        assert event["request"]["method"] == "PUT"
        assert event["request"]["addr"] == "127.0.0.1"


def test_each_tag_skopeo_pushes_is_one_signed_gitea_package_event(site, pushed):
    _, _, gitea, _ = site
    got = wait_for(gitea, "push", 2)

    for request in got:
        assert request.signed_with(GITEA_SECRET)
        assert request.headers["X-Gitea-Event"] == "package"
        assert (
            "sha256=" + request.headers["X-Gitea-Signature"]
            == (request.headers["X-Hub-Signature-256"])
        )
    bodies = [request.json for request in got]
    assert sorted(body["package"]["version"] for body in bodies) == ["1.0", "1.1"]
    assert {(body["action"], body["sender"]["login"]) for body in bodies} == {("created", "alice")}
    assert {(body["package"]["name"], body["package"]["type"]) for body in bodies} == {
        ("hooks/app", "container")
    }


def test_skopeo_delete_by_digest_is_one_delete_event_per_tag(site, pushed):
    forge, skopeo, gitea, distribution = site
    # In order per webhook: both pushes are delivered before any delete is.
    assert len(wait_for(distribution, "push", 2)) == 2
    assert len(wait_for(gitea, "push", 2)) == 2

    skopeo(
        "delete", "--tls-verify=false", "--creds", forge.alice.joined,
        f"docker://{forge.host}/{REPOSITORY}@{sha256(pushed)}",
    )  # fmt: skip

    deletes = wait_for(distribution, "delete", 2)
    gitea_deletes = wait_for(gitea, "delete", 2)
    time.sleep(2)  # the worker polls each second: a duplicate would have come by now
    assert len(distribution.received) == len(gitea.received) == 4
    events = [request.json["events"][0] for request in deletes]
    assert all(request.signed_with(DISTRIBUTION_SECRET) for request in deletes)
    assert sorted(event["target"]["tag"] for event in events) == ["1.0", "1.1"]
    assert {(event["action"], event["target"]["digest"]) for event in events} == {
        ("delete", sha256(pushed))
    }
    assert {event["actor"]["name"] for event in events} == {"alice"}
    assert {event["request"]["method"] for event in events} == {"DELETE"}
    assert all(request.signed_with(GITEA_SECRET) for request in gitea_deletes)
    assert sorted(request.json["package"]["version"] for request in gitea_deletes) == [
        "1.0",
        "1.1",
    ]
    assert {request.json["action"] for request in gitea_deletes} == {"deleted"}
