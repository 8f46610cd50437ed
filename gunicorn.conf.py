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
