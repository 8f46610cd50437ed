"""gunicorn settings for `make run`: HOST, PORT and FORGE_WORKERS override the defaults."""

import glob
import multiprocessing
import os
import shutil
import tempfile

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"

# The worker (forge/gunicorn_worker.py) reads request heads in its event loop, runs
# quick requests on one thread per process and transfers (uploads, blob downloads) on
# `threads` more, so a slow client holds a socket and a long push holds one thread;
# the worker heartbeat is separate from requests, so a long push is not cut off.
worker_class = "forge.gunicorn_worker.ForgeWorker"
workers = int(os.environ.get("FORGE_WORKERS", min(2 * multiprocessing.cpu_count() + 1, 8)))
threads = int(os.environ.get("FORGE_THREADS", 16))
timeout = 120
graceful_timeout = 30
keepalive = 5

# Request bodies are read by the app in fixed-size pieces; no limit on their size here.
limit_request_line = 8190

# Prometheus metrics from every worker (registry/metrics.py): each worker writes its
# samples to files in this directory, which must be empty when the server starts and
# must be set before any worker imports prometheus_client. One per server unless given.
_metrics_dir_is_ours = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _metrics_dir_is_ours:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="forge-metrics-")

# The worker heartbeat touches a file on every loop; on a disk file system that is a
# journalled metadata write per request (gunicorn's own advice: use memory).
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

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

    for stale in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.unlink(stale)

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


def child_exit(server, worker):
    """A worker's live samples (gauges) go with it; its counters stay counted."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _metrics_dir_is_ours:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
