"""gunicorn settings for `make run`: HOST, PORT and FORGE_WORKERS override the defaults."""

import glob
import multiprocessing
import os
import shutil
import sys
import tempfile

# gunicorn reads this file before it moves to its --chdir; forge sits beside it.
_project_dir = os.path.dirname(os.path.abspath(__file__))
if _project_dir not in sys.path:
    sys.path.insert(0, _project_dir)

from forge import environment, startup  # noqa: E402

env = os.environ

# A bad value stops gunicorn here with one line (forge/startup.py), not with
# gunicorn's "Failed to read config file" and a traceback.
with startup.misconfiguration_exits():
    port = environment.get_int(env, "PORT", 8000, maximum=65535)
    workers = environment.get_int(
        env, "FORGE_WORKERS", min(2 * multiprocessing.cpu_count() + 1, 8), minimum=1
    )
    threads = environment.get_int(env, "FORGE_THREADS", 16, minimum=1)
    loglevel = environment.log_level(env).lower()
    # The worker reads these per connection (forge/gunicorn_worker.py, with the same
    # defaults); a bad one would fail every connection instead of the start.
    environment.get_seconds(env, "FORGE_HEADER_TIMEOUT", 10)
    environment.get_seconds(env, "FORGE_BODY_TIMEOUT", 60)
bind = f"{env.get('HOST', '127.0.0.1')}:{port}"

# The worker (forge/gunicorn_worker.py) reads request heads in its event loop, runs
# quick requests on one thread per process and transfers (uploads, blob downloads) on
# `threads` more, so a slow client holds a socket and a long push holds one thread;
# the worker heartbeat is separate from requests, so a long push is not cut off.
worker_class = "forge.gunicorn_worker.ForgeWorker"
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
forwarded_allow_ips = env.get("FORGE_FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server):
    """Check the site once, in the master, before it listens or starts a worker.

    A misconfiguration (a taken port, a bad setting, a missing S3 bucket, a database
    that cannot be reached) then stops the server at once with one line and exit
    status 2, instead of workers that fail to boot again and again, or requests that
    fail later.
    """
    for stale in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.unlink(stale)

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "forge.settings")
    try:
        with startup.misconfiguration_exits():
            # Sockets handed over (systemd, an upgrade) are bound already; with
            # reuse_port, servers share the port on purpose.
            if not startup.inherits_sockets(env) and not server.cfg.reuse_port:
                startup.check_listen_addresses(server.cfg.address)
            django.setup()
            startup.check_site()
            startup.check_database()
    except SystemExit:
        # gunicorn runs no on_exit when its start fails.
        if server.pidfile is not None:
            server.pidfile.unlink()
        on_exit(server)
        raise


def child_exit(server, worker):
    """A worker's live samples (gauges) go with it; its counters stay counted."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """The metrics directory this server made goes with it."""
    if _metrics_dir_is_ours:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
