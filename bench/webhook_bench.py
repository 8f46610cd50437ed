"""What webhooks cost a push, and how fast the worker delivers: the issue 17 benchmark.

In-process on a temporary data dir (SQLite unless DATABASE_URL names an empty
PostgreSQL database, migrated here):

- the manifest PUT's added latency: `--pushes` manifests put through the registry's
  service (`images.put_manifest`, the /v2 view's whole transaction) by an owner with
  no webhook and by one with a webhook, in turn; medians and p95 of each, and the
  difference;
- delivery throughput: `--events` push events queued, then `deliver_events`' steps
  (`deliver_due`) run until every one is delivered to a receiver on loopback (a
  ThreadingHTTPServer answering 200), spread over two webhooks: deliveries per second
  for one worker.

    .venv/bin/python bench/webhook_bench.py --pushes 300 --events 1000 [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup(data_dir: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["FORGE_DATA_DIR"] = data_dir
    os.environ["FORGE_WEBHOOK_ALLOWED_HOSTS"] = "127.0.0.1"
    os.environ["FORGE_SYNC_WRITES"] = "false"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "forge.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def manifest(config: bytes, layer: bytes) -> bytes:
    def descriptor(media_type: str, data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptor("application/vnd.oci.image.config.v1+json", config),
            "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer)],
        }
    ).encode()


def prepared(owner, user, repo: str, count: int) -> list[bytes]:
    """`count` manifests whose blobs are staged in the image, ready to be put."""
    from packages_core.services.blobs import store_blob
    from registry import images

    layer = os.urandom(1024)
    store_blob(io.BytesIO(layer), claim=images.staging_claim(owner, repo, creator=user))
    bodies = []
    for number in range(count):
        config = json.dumps({"architecture": "amd64", "os": "linux", "n": number}).encode()
        store_blob(io.BytesIO(config), claim=images.staging_claim(owner, repo, creator=user))
        bodies.append(manifest(config, layer))
    return bodies


def put_times(pushers, count: int) -> list[list[float]]:
    """Seconds of each manifest PUT of each (owner, user, repo), taken in turn, so that
    whatever else the machine does weighs on each alike.
    """
    from registry import images

    bodies = [prepared(owner, user, repo, count) for owner, user, repo in pushers]
    times = [[] for _ in pushers]
    for number in range(count):
        for index, (owner, user, repo) in enumerate(pushers):
            started = time.perf_counter()
            images.put_manifest(
                owner, repo, f"v{number}", bodies[index][number], None, creator=user
            )
            times[index].append(time.perf_counter() - started)
    return times


def summary(times: list[float]) -> dict:
    ordered = sorted(times)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=300)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="webhook-bench-") as data_dir:
        setup(data_dir)
        from django.db import connection, transaction

        from packages_core.models import WebhookDelivery
        from packages_core.services import delivery, owners, webhooks
        from tests.webhook_helpers import Receiver

        user = owners.create_user("bench", password="bench-pw", email="bench@example.com")
        quiet = owners.create_user("quiet", password="quiet-pw", email="quiet@example.com")
        owner = user.package_owner
        receiver = Receiver()
        webhooks.create_webhook(owner, receiver.url, secret="s", format="distribution")
        put_times([(quiet.package_owner, quiet, "warmup")], 20)
        times = put_times(
            [(quiet.package_owner, quiet, "plain"), (owner, user, "hooked")], args.pushes
        )
        without, with_hooks = summary(times[0]), summary(times[1])
        queued = WebhookDelivery.objects.count()
        WebhookDelivery.objects.all().delete()
        added = round(with_hooks["median_ms"] - without["median_ms"], 3)
        print(f"manifest PUT without webhooks: {without} on {connection.vendor}")
        print(f"manifest PUT with a webhook:    {with_hooks} ({queued} outbox rows)")
        print(f"added median latency: {added} ms")

        def render(format_, event_id):
            return {"events": [{"id": event_id, "action": "push"}]}

        # Two webhooks (the owner's, the site's): each event is two deliveries.
        webhooks.create_webhook(None, receiver.url, secret="s")
        for _ in range(args.events // 2):
            with transaction.atomic():
                webhooks.enqueue(owner, "push", "app", render)
        total = WebhookDelivery.objects.count()
        started = time.perf_counter()
        while delivery.deliver_due(limit=50):
            pass
        seconds = time.perf_counter() - started
        delivered = WebhookDelivery.objects.filter(status="delivered").count()
        receiver.close()
        rate = round(delivered / seconds, 1)
        print(f"delivered {delivered}/{total} events in {seconds:.2f} s: {rate} events/s")
        figures = {
            "database": connection.vendor,
            "pushes": args.pushes,
            "put_without_webhooks": without,
            "put_with_webhooks": with_hooks,
            "added_median_ms": added,
            "events": total,
            "delivered": delivered,
            "delivery_seconds": round(seconds, 3),
            "events_per_second": rate,
        }
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
