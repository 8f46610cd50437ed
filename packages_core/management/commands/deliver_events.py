"""`manage.py deliver_events [--once]`: the webhook delivery worker (services/delivery.py).

Long-running: sends what is due, then sleeps WEBHOOK_POLL_SECONDS when nothing was.
SIGTERM or SIGINT stop it after the delivery in hand, whose outcome is recorded; a
worker killed harder leaves its claim to expire, and the event is sent again.
"""

import signal
import threading

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from packages_core.conf import packages_settings
from packages_core.services import delivery


class Command(BaseCommand):
    help = "Deliver webhook events from the outbox (runs until stopped)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Send what is due now, then exit.")

    def handle(self, *args, **options):
        if options["once"]:
            while delivery.deliver_due():
                pass
            return
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        self.stdout.write("Delivering webhook events.")
        while not stop.is_set():
            # A long-lived process: reconnect after the database went away.
            close_old_connections()
            try:
                sent = delivery.deliver_due()
            except Exception:
                delivery.logger.exception("delivering webhook events failed; trying again")
                sent = 0
            if not sent:
                stop.wait(packages_settings.WEBHOOK_POLL_SECONDS)
        self.stdout.write("Stopped delivering webhook events.")
