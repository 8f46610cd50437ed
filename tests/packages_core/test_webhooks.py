"""Webhooks on the domain: the outbox written in the caller's transaction, the worker's
claims, retries and failures, signatures, refused addresses, the command and the admin.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from packages_core import outbound
from packages_core.models import Owner, Webhook, WebhookDelivery
from packages_core.services import delivery, webhooks

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(alice):
    return Owner.objects.named("alice").get()


def render(format_, event_id):
    return {"format": format_, "id": event_id}


def enqueue(owner, event="push", name="app"):
    return webhooks.enqueue(owner, event, name, render)


def test_enqueue_writes_one_delivery_per_matching_webhook(owner, bob):
    mine = webhooks.create_webhook(owner, "http://example.com/a", format="distribution")
    site = webhooks.create_webhook(None, "http://example.com/b")
    webhooks.create_webhook(Owner.objects.named("bob").get(), "http://example.com/c")
    rows = enqueue(owner)
    assert sorted(row.webhook_id for row in rows) == [mine.pk, site.pk]
    # One event: the same id everywhere, each format's body rendered once.
    assert len({row.event_id for row in rows}) == 1
    by_hook = {row.webhook_id: row for row in WebhookDelivery.objects.all()}
    assert json.loads(bytes(by_hook[mine.pk].body))["format"] == "distribution"
    assert by_hook[mine.pk].content_type == "application/vnd.docker.distribution.events.v1+json"
    assert json.loads(bytes(by_hook[site.pk].body)) == {
        "format": "gitea",
        "id": str(rows[0].event_id),
    }


def test_no_webhook_renders_nothing(owner):
    def refuse(format_, event_id):
        raise AssertionError("rendered without a webhook")

    assert webhooks.enqueue(owner, "push", "app", refuse) == []


def test_filter_and_event_selection_are_respected(owner):
    webhooks.create_webhook(owner, "http://example.com/a", name_filter="team/*")
    webhooks.create_webhook(owner, "http://example.com/b", events="delete")
    webhooks.create_webhook(owner, "http://example.com/c", is_active=False)
    assert enqueue(owner, name="other") == []
    assert [r.webhook.url for r in enqueue(owner, name="Team/App")] == ["http://example.com/a"]
    assert [r.webhook.url for r in enqueue(owner, event="delete", name="x")] == [
        "http://example.com/b"
    ]


def test_a_new_webhook_is_seen_at_once_by_its_process(owner):
    assert enqueue(owner) == []  # cached: no webhooks
    webhooks.create_webhook(owner, "http://example.com/a")
    assert len(enqueue(owner)) == 1


def test_update_changes_only_what_is_given_and_is_seen_at_once(owner):
    webhook = webhooks.create_webhook(owner, "http://example.com/a", secret="s", name_filter="x*")
    assert len(enqueue(owner, name="xy")) == 1

    webhooks.update_webhook(webhook, events=["delete"], is_active=True)

    webhook.refresh_from_db()
    assert (webhook.url, webhook.secret, webhook.events, webhook.name_filter) == (
        "http://example.com/a",
        "s",
        ["delete"],
        "x*",
    )
    assert enqueue(owner, name="xy") == []  # the cached targets were dropped
    webhooks.update_webhook(webhook, secret="", is_active=False)
    webhook.refresh_from_db()
    assert (webhook.secret, webhook.is_active) == ("", False)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"url": "ftp://example.com"}, "url"),
        ({"url": "http://"}, "url"),
        ({"events": "push,explode"}, "events"),
        ({"format": "slack"}, "format"),
        ({"name_filter": "x" * 256}, "name_filter"),
    ],
)
def test_update_refuses_what_create_refuses_and_names_the_field(owner, changes, field):
    webhook = webhooks.create_webhook(owner, "http://example.com/a")

    with pytest.raises(webhooks.WebhookInvalid) as refused:
        webhooks.update_webhook(webhook, **changes)

    assert refused.value.field == field
    webhook.refresh_from_db()
    assert (webhook.url, webhook.events, webhook.format) == (
        "http://example.com/a",
        ["push", "delete"],
        "gitea",
    )


def test_delete_webhook_takes_its_deliveries_and_stops_its_events(owner):
    webhook = webhooks.create_webhook(owner, "http://example.com/a")
    assert len(enqueue(owner)) == 1

    webhooks.delete_webhook(webhook)

    assert not WebhookDelivery.objects.exists()
    assert enqueue(owner) == []


def test_a_rolled_back_change_leaves_no_event(owner):
    webhooks.create_webhook(owner, "http://example.com/a")

    def failing_change():
        with transaction.atomic():
            enqueue(owner)
            raise RuntimeError("the push failed")

    with pytest.raises(RuntimeError):
        failing_change()
    assert not WebhookDelivery.objects.exists()


def test_unknown_events_and_formats_are_refused(owner):
    with pytest.raises(webhooks.WebhookInvalid):
        webhooks.create_webhook(owner, "http://example.com", events="push,explode")
    with pytest.raises(webhooks.WebhookInvalid):
        webhooks.create_webhook(owner, "http://example.com", format="slack")
    with pytest.raises(webhooks.WebhookInvalid):
        webhooks.create_webhook(owner, "ftp://example.com")


# Delivery


def deliver_all():
    call_command("deliver_events", "--once")


def test_delivery_is_signed_and_named(owner, receiver):
    webhooks.create_webhook(owner, receiver.url, secret="s3cret")
    (row,) = enqueue(owner)
    deliver_all()
    (got,) = receiver.received
    assert got.path == "/hook"
    assert got.signed_with("s3cret")
    assert not got.signed_with("other")
    assert got.headers["X-Forge-Event"] == "push"
    assert got.headers["X-Forge-Delivery"] == str(row.event_id)
    assert got.headers["X-Gitea-Event"] == "package"
    assert got.headers["Host"] == f"127.0.0.1:{receiver.port}"
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 1, 200)
    assert row.last_duration_ms is not None
    assert row.claimed_until is None


def test_receiver_down_is_retried_then_delivered(owner, receiver, settings):
    settings.PACKAGES = {**settings.PACKAGES, "WEBHOOK_RETRY_BASE_SECONDS": 60}
    webhooks.create_webhook(owner, receiver.url)
    (row,) = enqueue(owner)
    receiver.status = 503
    before = timezone.now()
    deliver_all()
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, 503)
    # The first retry waits the base, less up to half at random.
    assert before + timedelta(seconds=29) < row.next_attempt_at < before + timedelta(seconds=61)
    deliver_all()  # not due yet
    assert len(receiver.received) == 1
    receiver.status = 200
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    deliver_all()
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("delivered", 2)
    assert len(receiver.received) == 2


def test_a_connection_refused_is_retried(owner, receiver):
    port = receiver.port
    receiver.close()
    webhooks.create_webhook(owner, f"http://127.0.0.1:{port}/hook")
    (row,) = enqueue(owner)
    deliver_all()
    row.refresh_from_db()
    assert row.status == "pending"
    assert row.last_status_code is None
    assert "Connection" in row.last_error or "refused" in row.last_error.lower()


def test_an_event_stays_failed_after_the_last_attempt_and_can_be_redelivered(
    owner, receiver, settings
):
    settings.PACKAGES = {**settings.PACKAGES, "WEBHOOK_MAX_ATTEMPTS": 2}
    webhooks.create_webhook(owner, receiver.url)
    (row,) = enqueue(owner)
    receiver.status = 500
    for _ in range(3):
        WebhookDelivery.objects.filter(status="pending").update(next_attempt_at=timezone.now())
        deliver_all()
    row.refresh_from_db()
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 2, None)
    assert len(receiver.received) == 2
    receiver.status = 200
    assert webhooks.redeliver([row]) == 1
    deliver_all()
    row.refresh_from_db()
    assert row.status == "delivered"


def test_redirects_are_not_followed(owner, receiver):
    webhooks.create_webhook(owner, receiver.url)
    (row,) = enqueue(owner)
    receiver.status = 302
    deliver_all()
    row.refresh_from_db()
    assert (row.status, row.last_status_code) == ("pending", 302)
    assert len(receiver.received) == 1


def test_events_go_in_order_per_webhook(owner, receiver):
    webhooks.create_webhook(owner, receiver.url)
    rows = [enqueue(owner)[0] for _ in range(3)]
    receiver.status = 500
    deliver_all()
    # The first failed: the others wait behind it.
    assert [r.json["id"] for r in receiver.received] == [str(rows[0].event_id)]
    receiver.status = 200
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    deliver_all()
    assert [r.json["id"] for r in receiver.received[1:]] == [str(r.event_id) for r in rows]


def test_a_claimed_event_is_not_claimed_again_until_its_lease_ends(owner):
    webhooks.create_webhook(owner, "http://example.com/a")
    enqueue(owner)
    (first,) = delivery.claim()
    assert delivery.claim() == []  # another worker finds nothing to do
    WebhookDelivery.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert [row.pk for row in delivery.claim()] == [first.pk]  # that worker died


def test_a_switched_off_webhook_holds_its_events(owner, receiver):
    hook = webhooks.create_webhook(owner, receiver.url)
    (row,) = enqueue(owner)
    Webhook.objects.filter(pk=hook.pk).update(is_active=False)
    deliver_all()
    row.refresh_from_db()
    assert row.status == "pending"
    assert row.attempts == 0
    assert not receiver.received


@pytest.mark.django_db(transaction=True)
def test_two_workers_deliver_each_event_once(alice, receiver):
    """Two threads with connections of their own (PostgreSQL; on SQLite the suite's
    in-memory database locks whole tables between threads, so there two worker
    processes on a database file do it: tests/packages_core/test_webhook_workers.py).
    """
    if connection.vendor != "postgresql":
        pytest.skip("threads on an in-memory SQLite database lock tables, not rows")
    owner = Owner.objects.named("alice").get()
    for n in range(4):
        webhooks.create_webhook(owner, f"{receiver.url}/{n}")
    for _ in range(5):
        enqueue(owner)
    failures = []

    def work():
        try:
            while delivery.deliver_due(limit=3):
                pass
        except Exception as error:  # pragma: no cover - reported below
            failures.append(error)
        finally:
            connection.close()

    workers = [threading.Thread(target=work) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not failures
    sent = [(r.path, r.headers["X-Forge-Delivery"]) for r in receiver.received]
    assert len(sent) == 20
    assert len(set(sent)) == 20
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}


# Addresses


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "224.0.0.1",
    ],
)
def test_private_and_special_addresses_are_not_public(address):
    assert not outbound.is_public(ipaddress.ip_address(address))


def test_public_addresses_are(settings):
    assert outbound.is_public(ipaddress.ip_address("93.184.216.34"))
    assert outbound.is_public(ipaddress.ip_address("2606:4700::1111"))


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/", "http://localhost:{port}/"])
def test_deliveries_to_loopback_are_refused_unless_allowed(owner, receiver, settings, url):
    settings.PACKAGES = {**settings.PACKAGES, "WEBHOOK_ALLOWED_HOSTS": []}
    webhooks.create_webhook(owner, url.format(port=receiver.port))
    (row,) = enqueue(owner)
    deliver_all()
    row.refresh_from_db()
    assert row.last_error.startswith("refused:")
    assert "not a public address" in row.last_error
    # What the owner sees does not say where the name leads: that is for the log.
    assert "resolves to" not in row.last_error
    if "localhost" in url:
        assert "127.0.0.1" not in row.last_error
    assert not receiver.received


def test_a_name_that_does_not_resolve_reads_like_a_private_one(owner, settings):
    settings.PACKAGES = {**settings.PACKAGES, "WEBHOOK_ALLOWED_HOSTS": []}
    webhooks.create_webhook(owner, "http://no-such-host.invalid/hook")
    (row,) = enqueue(owner)
    deliver_all()
    row.refresh_from_db()
    assert row.last_error == (
        "refused: no-such-host.invalid is not a public address, or cannot be resolved "
        "(a site admin may allow the host in WEBHOOK_ALLOWED_HOSTS)"
    )


def test_a_webhook_another_process_deleted_does_not_fail_the_change(owner):
    webhook = webhooks.create_webhook(owner, "https://ci.example.com/hook")
    assert webhooks.targets_of(owner.pk)  # this process keeps it
    kept = dict(webhooks._targets)
    Webhook.objects.filter(pk=webhook.pk).delete()  # as another process would
    webhooks._targets.update(kept)

    with transaction.atomic():
        assert enqueue(owner) == []


def test_the_check_follows_dns(owner, receiver, settings, monkeypatch):
    """A public-looking name that resolves to a private address is refused."""
    settings.PACKAGES = {**settings.PACKAGES, "WEBHOOK_ALLOWED_HOSTS": []}
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", 80))],
    )
    with pytest.raises(outbound.AddressRefused, match="WEBHOOK_ALLOWED_HOSTS"):
        outbound.resolve("hooks.example.com", 80, [], "WEBHOOK_ALLOWED_HOSTS")
    assert outbound.resolve("hooks.example.com", 80, ["hooks.example.com"], "X") == "10.0.0.5"


def test_an_allowed_name_connects_to_the_checked_address_with_its_host(owner, receiver, settings):
    settings.PACKAGES = {**settings.PACKAGES, "WEBHOOK_ALLOWED_HOSTS": ["localhost"]}
    webhooks.create_webhook(owner, f"http://localhost:{receiver.port}/x?y=1")
    enqueue(owner)
    deliver_all()
    (got,) = receiver.received
    assert got.path == "/x?y=1"
    assert got.headers["Host"] == f"localhost:{receiver.port}"


# The command


def test_createwebhook_prints_the_id(owner, capsys):
    call_command(
        "createwebhook",
        "alice",
        "--url",
        "https://ci.example.com/hook",
        "--secret",
        "s",
        "--events",
        "push",
        "--format",
        "distribution",
        "--filter",
        "app*",
    )
    webhook = Webhook.objects.get(pk=int(capsys.readouterr().out.strip()))
    assert (webhook.owner, webhook.url, webhook.secret) == (
        owner,
        "https://ci.example.com/hook",
        "s",
    )
    assert (webhook.events, webhook.format, webhook.name_filter) == (
        ["push"],
        "distribution",
        "app*",
    )


def test_createwebhook_for_the_site(db, capsys):
    call_command("createwebhook", "--site", "--url", "https://ci.example.com/hook")
    webhook = Webhook.objects.get(pk=int(capsys.readouterr().out.strip()))
    assert webhook.owner is None
    assert webhook.events == ["push", "delete"]


@pytest.mark.parametrize(
    "args",
    [
        ["--url", "https://x.example"],
        ["alice", "--site", "--url", "https://x.example"],
        ["nobody", "--url", "https://x.example"],
        ["alice", "--url", "https://x.example", "--events", "push,poke"],
    ],
)
def test_createwebhook_refuses(owner, args):
    with pytest.raises(CommandError):
        call_command("createwebhook", *args)


# Settings


@pytest.mark.parametrize(
    ("key", "value", "check_id"),
    [
        ("WEBHOOK_TIMEOUT", "10", "packages.E010"),
        ("WEBHOOK_RETRY_BASE_SECONDS", -1, "packages.E010"),
        ("WEBHOOK_MAX_ATTEMPTS", 0, "packages.E011"),
        ("WEBHOOK_RESPONSE_LIMIT", 1.5, "packages.E011"),
        ("WEBHOOK_ALLOWED_HOSTS", "localhost", "packages.E012"),
    ],
)
def test_bad_webhook_settings_are_reported(settings, key, value, check_id):
    from packages_core.checks import check_settings

    settings.PACKAGES = {**settings.PACKAGES, key: value}
    assert check_id in [error.id for error in check_settings()]


def test_the_default_webhook_settings_pass_the_checks(settings):
    from packages_core.checks import check_settings

    settings.PACKAGES = {}
    assert check_settings() == []


def test_retries_back_off_exponentially_with_jitter_up_to_the_maximum(settings):
    settings.PACKAGES = {
        **settings.PACKAGES,
        "WEBHOOK_RETRY_BASE_SECONDS": 10,
        "WEBHOOK_RETRY_MAX_SECONDS": 100,
    }
    for attempts, full in [(1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (9, 100)]:
        delays = {delivery.retry_delay(attempts) for _ in range(20)}
        assert all(full / 2 <= delay <= full for delay in delays)
        assert len(delays) > 1  # jittered


def test_a_webhook_deleted_while_its_event_is_sent_is_no_error(owner, receiver, monkeypatch):
    hook = webhooks.create_webhook(owner, receiver.url)
    enqueue(owner)
    send = delivery.send

    def send_then_delete(row):
        outcome = send(row)
        Webhook.objects.filter(pk=hook.pk).delete()
        return outcome

    monkeypatch.setattr(delivery, "send", send_then_delete)
    deliver_all()
    assert len(receiver.received) == 1
    assert not WebhookDelivery.objects.exists()


def test_a_worker_whose_lease_ran_out_neither_sends_nor_records(owner, receiver):
    webhooks.create_webhook(owner, receiver.url)
    (row,) = enqueue(owner)
    (mine,) = delivery.claim()
    # My lease ran out and another worker claimed the row.
    WebhookDelivery.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))
    (theirs,) = delivery.claim()
    assert not delivery.renew(mine)
    delivery.record(mine, delivery.Outcome(status_code=500, error="late"))
    row.refresh_from_db()
    assert (row.attempts, row.last_error, row.claimed_until) == (0, "", theirs.claimed_until)
    assert delivery.renew(theirs)


class Trickler:
    """A receiver on loopback that reads the request, then answers one byte per `pause`
    seconds: each read is quick, the whole answer is not.
    """

    ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    def __init__(self, pause: float = 0.5):
        self.pause = pause
        self.stopped = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/hook"
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                for byte in self.ANSWER:
                    if self.stopped.wait(self.pause):
                        return
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:
                        break

    def close(self):
        self.stopped.set()
        self.server.close()


@pytest.fixture
def trickler(settings):
    settings.PACKAGES = {**settings.PACKAGES, "WEBHOOK_ALLOWED_HOSTS": ["127.0.0.1"]}
    trickler = Trickler()
    yield trickler
    trickler.close()


def test_a_receiver_trickling_its_answer_fails_the_attempt_at_the_timeout(
    owner, trickler, settings
):
    settings.PACKAGES = {**settings.PACKAGES, "WEBHOOK_TIMEOUT": 1.5}
    webhooks.create_webhook(owner, trickler.url)
    (row,) = enqueue(owner)

    started = time.monotonic()
    deliver_all()
    took = time.monotonic() - started

    # Every byte comes well within the timeout, the whole answer (~20 s) does not.
    assert 1.4 < took < 3.5
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, None)
    assert "TimeoutError" in row.last_error
    assert row.next_attempt_at > timezone.now()  # retried later
    assert row.claimed_until is None


def test_a_secret_is_sealed_at_rest_and_signs_in_clear(owner):
    webhook = webhooks.create_webhook(owner, "https://ci.example.com/hook", secret="s3cret-value")

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sealed_secret FROM packages_core_webhook WHERE id = %s", [webhook.pk]
        )
        stored = cursor.fetchone()[0]
    assert "s3cret-value" not in stored
    assert Webhook.objects.get(pk=webhook.pk).secret == "s3cret-value"
    assert Webhook.objects.get(pk=webhook.pk).has_secret
