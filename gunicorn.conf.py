"""gunicorn settings for `make run`: HOST, PORT and FORGE_WORKERS override the defaults."""

import multiprocessing
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"

# Threads let one process stream several large uploads and downloads at once; the
# worker heartbeat is separate from requests, so a long push is not cut off. The
# worker is gunicorn's gthread with a fast answer to TLS on this plain-HTTP port.
worker_class = "forge.gunicorn_worker.ForgeThreadWorker"
workers = int(os.environ.get("FORGE_WORKERS", min(2 * multiprocessing.cpu_count() + 1, 8)))
threads = int(os.environ.get("FORGE_THREADS", 4))
timeout = 120
graceful_timeout = 30
keepalive = 5

# Request bodies are read by the app in fixed-size pieces; no limit on their size here.
limit_request_line = 8190

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("FORGE_LOG_LEVEL", "info").lower()
forwarded_allow_ips = os.environ.get("FORGE_FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server):
    """Run Django's system checks once, in the master, before any worker starts.

    A misconfiguration (a missing S3 bucket, a bad setting) then stops the server at
    start-up with the check's own message, instead of failing requests later.
    """
    import sys

    import django
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "forge.settings")
    django.setup()
    try:
        call_command("check", fail_level="ERROR")
    except SystemCheckError as error:
        print(error, file=sys.stderr)
        sys.exit(1)
