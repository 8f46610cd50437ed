"""`make run`'s process: gunicorn and the webhook worker together; a push reaches a
receiver through both, and Ctrl-C stops both.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.webhook_helpers import Receiver

from .conftest import REPO_ROOT, answers_http, child_env, free_port, manage

VENV_BIN = Path(sys.executable).parent
STARTUP_TIMEOUT = 60
# scripts/run_site.py gives its children 30 s to stop after SIGTERM; then some more.
STOP_SECONDS = 40


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push(base: str, repo: str, tag: str) -> str:
    """A one-layer image by monolithic uploads, as alice; the manifest's digest."""
    session = requests.Session()
    session.auth = ("alice", "alice-pw")
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {}}).encode()
    layer = b"a layer"
    for blob in (config, layer):
        response = session.post(
            f"{base}/v2/{repo}/blobs/uploads/", params={"digest": digest(blob)}, data=blob
        )
        assert response.status_code == 201, response.text
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digest(layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    response = session.put(
        f"{base}/v2/{repo}/manifests/{tag}",
        data=manifest,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert response.status_code == 201, response.text
    return digest(manifest)


@pytest.fixture
def site(tmp_path):
    receiver = Receiver()
    env = {
        **child_env(tmp_path),
        "FORGE_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        "FORGE_SYNC_WRITES": "false",
    }
    manage(["migrate", "--noinput"], env)
    manage(["createuser", "alice", "--password", "alice-pw"], env)
    hook_id = manage(
        ["createwebhook", "alice", "--url", receiver.url, "--format", "distribution"], env
    )
    assert hook_id.strip().isdigit()
    yield env, receiver
    receiver.close()


def start_site(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen:
    """`make run`'s process on `port`, answering; in a process group of its own, as a
    terminal gives it.
    """
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "scripts/run_site.py", sys.executable, str(VENV_BIN / "gunicorn")],
            cwd=REPO_ROOT,
            env={**env, "HOST": "127.0.0.1", "PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not answers_http("127.0.0.1", port):
        if process.poll() is not None or time.monotonic() > deadline:
            kill_group(process)
            pytest.fail(f"the site did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    return process


def kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def wait_for(receiver: Receiver, count: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while len(receiver.received) < count and time.monotonic() < deadline:
        time.sleep(0.1)


def test_make_run_delivers_a_push_and_stops_both_on_ctrl_c(site, tmp_path):
    env, receiver = site
    port = free_port()
    log_path = tmp_path / "run.log"
    process = start_site(env, port, log_path)
    try:
        pushed = push(f"http://127.0.0.1:{port}", "alice/app", "v1")
        wait_for(receiver, 1, 30)
        (got,) = receiver.received
        target = got.json["events"][0]["target"]
        assert (target["digest"], target["tag"], target["repository"]) == (
            pushed,
            "v1",
            "alice/app",
        )
        # Ctrl-C: SIGINT to the whole process group.
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(40) == 0
    finally:
        if process.poll() is None:
            kill_group(process)
    output = log_path.read_text()
    assert "Delivering webhook events." in output
    assert "Stopped delivering webhook events." in output
    # Nothing of the group is left running (gunicorn's workers, reparented once their
    # master is gone, may take a moment to be reaped): within the time run_site gives
    # its children to stop, and what is left is named if not.
    deadline = time.monotonic() + STOP_SECONDS
    while group_alive(process.pid):
        if time.monotonic() > deadline:
            pytest.fail(f"make run's group still runs:\n{group_listing(process.pid)}")
        time.sleep(0.2)


def group_listing(pgid: int) -> str:
    """The processes of a group, as ps lists them, with their state and age."""
    listed = subprocess.run(
        ["ps", "-eo", "pgid,pid,ppid,stat,etime,args"], capture_output=True, text=True, check=False
    )
    lines = listed.stdout.splitlines()
    return "\n".join(lines[:1] + [line for line in lines[1:] if line.split()[0] == str(pgid)])


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.e2e
def test_an_event_committed_before_a_crash_is_delivered_after_the_restart(site, tmp_path):
    """The server and the worker killed (SIGKILL) after a push's commit, before its event
    reached the receiver (which is down): started again, they deliver it.
    """
    env, receiver = site
    receiver.close()  # down: the push's event cannot be delivered
    port = free_port()
    log_path = tmp_path / "run.log"
    process = start_site(env, port, log_path)
    try:
        pushed = push(f"http://127.0.0.1:{port}", "alice/app", "v1")
        time.sleep(1.5)  # long enough for the worker to try, and fail
    finally:
        kill_group(process)
    back = Receiver(port=receiver.port)
    process = start_site(env, port, log_path)
    try:
        # The retry comes after the first backoff (WEBHOOK_RETRY_BASE_SECONDS, 10 s, less
        # up to half), or at once if the first worker never tried.
        wait_for(back, 1, 40)
        (got,) = back.received
        assert got.json["events"][0]["target"]["digest"] == pushed
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(40) == 0
    finally:
        if process.poll() is None:
            kill_group(process)
        back.close()


def test_when_gunicorn_cannot_start_the_worker_is_stopped_too(site, tmp_path):
    env, _ = site
    result = subprocess.run(
        [sys.executable, "scripts/run_site.py", sys.executable, str(VENV_BIN / "gunicorn")],
        cwd=REPO_ROOT,
        env={**env, "HOST": "127.0.0.1", "PORT": "not-a-port"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
