"""Several `deliver_events` processes on one database (a SQLite file, as `make run`
keeps it) send each event once, and in order per webhook.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.e2e.conftest import REPO_ROOT, child_env, manage
from tests.webhook_helpers import Receiver

WEBHOOKS = 8
EVENTS = 15

ENQUEUE = f"""
from django.db import transaction
from packages_core.models import Owner
from packages_core.services import webhooks
owner = Owner.objects.named("alice").get()
for n in range({EVENTS}):
    with transaction.atomic():
        webhooks.enqueue(owner, "push", "app", lambda format_, event_id: {{"n": n}})
"""


class SlowReceiver(Receiver):
    """Answers after a moment, so that the workers' sends overlap."""

    def __init__(self):
        super().__init__()
        handler = self.server.RequestHandlerClass
        original = handler.do_POST

        def slow(request_handler):
            time.sleep(0.01)
            original(request_handler)

        handler.do_POST = slow


@pytest.fixture
def receiver():
    receiver = SlowReceiver()
    yield receiver
    receiver.close()


def test_two_worker_processes_send_each_event_once_in_order(tmp_path, receiver):
    env = {**child_env(tmp_path), "FORGE_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"}
    manage(["migrate", "--noinput"], env)
    manage(["createuser", "alice", "--password", "alice-pw"], env)
    for n in range(WEBHOOKS):
        manage(["createwebhook", "alice", "--url", f"{receiver.url}/{n}"], env)
    manage(["shell", "-c", ENQUEUE], env)
    # Long-running, as `make run` starts them: each polls for what the other left.
    workers = [
        subprocess.Popen(
            [sys.executable, "manage.py", "deliver_events"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 120
        while len(receiver.received) < WEBHOOKS * EVENTS and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)  # a duplicate, were there one, would come now
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        outputs = [worker.communicate(timeout=60)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    sent = [(r.path, r.headers["X-Forge-Delivery"]) for r in receiver.received]
    assert len(sent) == WEBHOOKS * EVENTS
    assert len(set(sent)) == len(sent)
    for n in range(WEBHOOKS):
        order = [r.json["n"] for r in receiver.received if r.path == f"/hook/{n}"]
        assert order == list(range(EVENTS))
