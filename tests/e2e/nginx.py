"""nginx in front of live servers, as an ordinary process with a config of the test's own.

Debian's `nginx` package is enough: the config keeps its pid file, logs and temporary
directories in the test's directory, so nothing of the machine's nginx is touched.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .conftest import answers_http, free_port, log_tail, require_tool

STARTUP_TIMEOUT = 15

CONFIG = """\
# Written by the test; see docs/scaling.md for the production version.
user root root;
worker_processes 2;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

    upstream forge {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        # Layers are any size, and stream through to the app as they arrive.
        client_max_body_size 0;
        proxy_request_buffering off;
        proxy_buffering off;
        proxy_http_version 1.1;
        proxy_read_timeout 900s;
        proxy_send_timeout 900s;
        location / {{
            proxy_pass http://forge;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


@dataclass
class Nginx:
    url: str
    directory: Path
    process: subprocess.Popen

    @property
    def access_log(self) -> Path:
        return self.directory / "access.log"


@contextlib.contextmanager
def nginx_in_front(directory: Path, upstreams: list[str], port: int | None = None):
    """nginx on loopback (`port`, or a free one), sending requests round robin to
    `upstreams` ("host:port"); yields an Nginx, stopped afterwards.
    """
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        require_tool("nginx")  # skips, or fails in CI, naming how to install it
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    servers = "\n".join(f"        server {upstream};" for upstream in upstreams)
    config = directory / "nginx.conf"
    config.write_text(CONFIG.format(dir=directory, port=port, servers=servers))
    process = subprocess.Popen(
        [binary, "-c", str(config), "-p", str(directory), "-g", "daemon off;"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=(directory / "stderr.log").open("wb"),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not answers_http("127.0.0.1", port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"nginx did not start: {log_tail(directory / 'stderr.log')}\n"
                    f"{log_tail(directory / 'error.log')}"
                )
            time.sleep(0.1)
        yield Nginx(f"http://127.0.0.1:{port}", directory, process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGQUIT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
